"""Recall's rows in Postgres: writing a message's chunks with their vectors, and the two
candidate rankings (nearest vectors, best lexical matches) over chosen messages.

The only SQL that touches `embedding`, a column that exists only where pgvector does
(migration 0008): `vectors_available()` says which mode this database is in.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass

from django.db import connection, transaction

from conversations.models import Conversation, MessageChunk

CHUNK = MessageChunk._meta.db_table
# Sizes with an HNSW index of their own (migration 0008); others are compared exactly.
INDEXED_SIZES = (384, 512, 768, 1024, 1536)
# word_similarity() above which a chunk counts as a lexical match of the query.
TRIGRAM_THRESHOLD = 0.3
# Words too common to say anything about what a turn was about.
# fmt: off
_STOP_WORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "did", "do", "does", "for", "from",
    "had", "has", "have", "how", "i", "if", "in", "is", "it", "its", "me", "my", "no", "not",
    "of", "on", "or", "our", "so", "than", "that", "the", "their", "them", "then", "there",
    "these", "they", "this", "to", "was", "we", "were", "what", "when", "where", "which", "who",
    "why", "will", "with", "would", "you", "your",
})
# fmt: on
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Candidate:
    chunk_id: int
    message_id: int
    score: float


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


def vectors_available() -> bool:
    """Whether this database stores vectors (the chunk table has its `embedding` column:
    migration 0008 found pgvector)."""
    return _database_features()[0]


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
                row += (embedding_model, len(stored[position]), _vector_literal(stored[position]))
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


def nearest(
    *,
    conversation_id: int,
    message_ids: Sequence[int],
    vector: Sequence[float],
    embedding_model: str,
    limit: int,
) -> list[Candidate]:
    """The chunks of `message_ids` nearest to `vector` (cosine), best first."""
    size = len(vector)
    literal = _vector_literal(vector)
    # The size is written into the statement, not passed: an index's WHERE dimensions = 384
    # is only used when the query's condition is the same literal. Iterative scans (pgvector
    # 0.8) keep the HNSW index searching until enough rows pass the conversation filter.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        cursor.execute(
            f"SELECT id, message_id, (embedding::vector({size})) <=> %s::vector({size})"
            f" FROM {CHUNK} WHERE conversation_id = %s AND dimensions = {size}"
            " AND embedding_model = %s AND message_id = ANY(%s)"
            f" ORDER BY (embedding::vector({size})) <=> %s::vector({size}) LIMIT %s",
            [literal, conversation_id, embedding_model, list(message_ids), literal, limit],
        )
        return [Candidate(c, m, 1.0 - float(d)) for c, m, d in cursor.fetchall()]


def nearest_for_owner(
    *,
    owner_id: int,
    vector: Sequence[float],
    embedding_model: str,
    limit: int,
    exclude_conversations: Sequence[int] = (),
) -> list[Candidate]:
    """Chunks of any of the owner's conversations nearest to `vector`, best first (the
    sidebar's search by meaning)."""
    size = len(vector)
    literal = _vector_literal(vector)
    owned = f"SELECT id FROM {Conversation._meta.db_table} WHERE owner_id = %s"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        cursor.execute(
            f"SELECT id, message_id, (embedding::vector({size})) <=> %s::vector({size})"
            f" FROM {CHUNK} WHERE conversation_id IN ({owned}) AND dimensions = {size}"
            " AND embedding_model = %s AND NOT (conversation_id = ANY(%s))"
            f" ORDER BY (embedding::vector({size})) <=> %s::vector({size}) LIMIT %s",
            [literal, owner_id, embedding_model, list(exclude_conversations), literal, limit],
        )
        return [Candidate(c, m, 1.0 - float(d)) for c, m, d in cursor.fetchall()]


def lexical(
    *, conversation_id: int, message_ids: Sequence[int], query: str, limit: int
) -> list[Candidate]:
    """The chunks of `message_ids` that share words with `query` (full-text, any of its
    words), or, with pg_trgm, a run of its characters (a Latin word inside Chinese text,
    Chinese itself, which has no spaces), best first."""
    words = content_words(query)
    trigram = trigrams_available()
    if not words and not trigram:
        return []
    tsquery = " or ".join(words) or "\u2400"  # a word nothing contains: no full-text match
    score = "ts_rank_cd(search_vector, q)"
    match = "search_vector @@ q"
    if trigram:
        score += " + word_similarity(%s, text)"
        match += " OR %s <%% text"  # <% (word similarity), the % doubled for the driver
    params: list[str | int | list[int]] = [*([query] if trigram else []), tsquery]
    params += [conversation_id, list(message_ids), *([query] if trigram else []), limit]
    with transaction.atomic(), connection.cursor() as cursor:
        if trigram:
            cursor.execute(f"SET LOCAL pg_trgm.word_similarity_threshold = {TRIGRAM_THRESHOLD}")
        cursor.execute(
            f"SELECT id, message_id, {score} AS score"
            f" FROM {CHUNK}, websearch_to_tsquery('simple', %s) AS q"
            f" WHERE conversation_id = %s AND message_id = ANY(%s) AND ({match})"
            " ORDER BY score DESC, id DESC LIMIT %s",
            params,
        )
        return [Candidate(c, m, float(s)) for c, m, s in cursor.fetchall()]


def content_words(text: str) -> list[str]:
    """The words of `text` that say what it is about (no stop words, no single letters)."""
    return [w for w in _WORD.findall(text.lower()) if len(w) > 1 and w not in _STOP_WORDS]


def _vector_literal(vector: Sequence[float]) -> str:
    return "[" + ",".join(f"{value:.7g}" for value in vector) + "]"
