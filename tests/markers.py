"""Where recall's tests cannot rank by vectors: on a PostgreSQL without pgvector (the run of
test_the_store_falls_back_to_words_alone) or on a CPU the embedded server's pgvector or the
bundled embedder cannot run on. There recall is lexical, and the tests that need vectors
skip, saying why."""

import os

import pytest
from django.conf import settings

from chatsite import cpu, embedded_postgres
from conversations.recall import embedders

WITHOUT_PGVECTOR = os.environ.get("RECALL_TEST_WITHOUT_VECTORS") == "1"
# The suite's embedder is the bundled one; the embedded server's pgvector needs more.
CPU_CANNOT_RUN_VECTORS = bool(
    cpu.missing(
        embedded_postgres.PGVECTOR_CPU_FLAGS
        if settings.DATABASE_IS_EMBEDDED
        else embedders.BUNDLED_CPU_FLAGS
    )
)
WITHOUT_VECTORS = WITHOUT_PGVECTOR or CPU_CANNOT_RUN_VECTORS

vectors_only = pytest.mark.skipif(
    WITHOUT_VECTORS,
    reason="no pgvector in this database"
    if WITHOUT_PGVECTOR
    else "the bundled pgvector or embedder needs instructions this CPU lacks",
)
