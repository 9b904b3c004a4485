"""Recall's rows in Postgres: a message's chunks with their vectors, written all at once,
and what this database can do with them (the rankings are in `rankings.py`).

With `rankings.py`, the only SQL that touches `embedding`, a column that exists only where
pgvector does (migration 0008): `vectors_available()` says which mode this database is in.
"""

from collections.abc import Sequence

from django.conf import settings
from django.db import connection, transaction

from chatsite import embedded_postgres
from conversations.models import MessageChunk
from conversations.recall import embedders

CHUNK = MessageChunk._meta.db_table
# What each database can do, asked once per process: (vectors, trigrams) by database.
_features: dict[tuple[str, str, str], tuple[bool, bool]] = {}


def _database_features() -> tuple[bool, bool]:
    key = (
        connection.alias,
        str(connection.settings_dict["HOST"]),
        connection.settings_dict["NAME"],
    )
    if key not in _features:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_name = %s"
                " AND column_name = 'embedding' AND table_schema = current_schema()),"
                " EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm')",
                [CHUNK],
            )
            row = cursor.fetchone()
        _features[key] = (bool(row[0]), bool(row[1]))
    return _features[key]


def vectors_unavailable_reason() -> str | None:
    """Why recall cannot rank by vectors here, said plainly; None when it can."""
    if not _database_features()[0]:
        return "this database has no pgvector extension"
    # The embedded server runs here, on this CPU; a server named by URL runs its own build.
    if settings.DATABASE_IS_EMBEDDED and (missing := embedded_postgres.missing_cpu_flags()):
        return (
            "the embedded PostgreSQL's pgvector needs instructions this CPU lacks"
            f" ({', '.join(missing)})"
        )
    return embedders.unavailable_reason()


def vectors_available() -> bool:
    """Whether recall stores and ranks vectors: the chunk table has its `embedding` column
    (migration 0008 found pgvector), the server can run pgvector's code and this process
    the embedder's."""
    return vectors_unavailable_reason() is None


def trigrams_available() -> bool:
    return _database_features()[1]


def chunks_replace(
    *,
    message_id: int,
    conversation_id: int,
    texts: Sequence[str],
    vectors: Sequence[Sequence[float]] | None,
    embedding_model: str,
) -> int:
    """The message's chunks become `texts` (with `vectors`, when given and stored here), all
    at once: a re-run replaces, never duplicates. Returns how many were written."""
    with transaction.atomic():
        MessageChunk.objects.filter(message_id=message_id).delete()
        if not texts:
            return 0
        stored = list(vectors) if vectors is not None and vectors_available() else None
        rows: list[tuple[int | str | None, ...]] = []
        for position, text in enumerate(texts):
            row: tuple[int | str | None, ...] = (message_id, conversation_id, position, text)
            if stored is None:
                row += ("", None)
            else:
                row += (embedding_model, len(stored[position]), vector_literal(stored[position]))
            rows.append(row)
        with_vectors = stored is not None
        columns = "message_id, conversation_id, position, text, embedding_model, dimensions"
        columns += ", embedding, created_at" if with_vectors else ", created_at"
        values = ", ".join(["%s"] * len(rows[0]))
        with connection.cursor() as cursor:
            cursor.executemany(
                f"INSERT INTO {CHUNK} ({columns}) VALUES ({values}, now())",
                rows,
            )
        return len(rows)


def vector_literal(vector: Sequence[float]) -> str:
    return "[" + ",".join(f"{value:.7g}" for value in vector) + "]"
