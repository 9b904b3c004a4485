"""Where recall's tests cannot rank by vectors: on a PostgreSQL without pgvector (the run of
test_the_store_falls_back_to_words_alone) or on a CPU the embedded server's pgvector cannot
run on. There recall is lexical, and the tests that need vectors skip, saying why."""

import os

import pytest
from django.conf import settings

from chatsite import embedded_postgres

WITHOUT_PGVECTOR = os.environ.get("RECALL_TEST_WITHOUT_VECTORS") == "1"
CPU_CANNOT_RUN_PGVECTOR = settings.DATABASE_IS_EMBEDDED and bool(
    embedded_postgres.missing_cpu_flags()
)
WITHOUT_VECTORS = WITHOUT_PGVECTOR or CPU_CANNOT_RUN_PGVECTOR

vectors_only = pytest.mark.skipif(
    WITHOUT_VECTORS,
    reason="no pgvector in this database"
    if WITHOUT_PGVECTOR
    else "the embedded pgvector needs instructions this CPU lacks",
)
