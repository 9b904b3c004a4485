"""Recall's two candidate rankings over a conversation's chunks: the nearest vectors and the
best lexical matches, each within a `Scope` (the messages a request may recall), plus the
nearest across all of a user's conversations for the sidebar's search by meaning.

Each stays within a bounded amount of work however long the history: the vector ranking
walks the HNSW index, the full-text one ranks at most FULL_TEXT_ROWS matches of the
query's most telling words, and trigrams are consulted for Chinese (which has no spaces)
or when the words found too little.
"""

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from django.db import connection, transaction

from conversations.models import Conversation
from conversations.recall.diversity import diverse_order
from conversations.recall.store import CHUNK, trigrams_available, vector_literal
from conversations.tokens import has_cjk

# Of the query's words, the longest this many go into full-text search (a long word says
# more about a turn than a short one), and at most this many matches are ranked.
MAX_QUERY_WORDS = 6
FULL_TEXT_ROWS = 1000
# The nearest this many times the ranks asked for are read, with their vectors, and taken
# in an order that passes over near-copies (recall/diversity.py).
DIVERSITY_POOL = 5
# word_similarity() above which a chunk counts as a match of the query's characters.
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


@dataclass(frozen=True)
class Scope:
    """The chunks a ranking may return: of one conversation's messages before `before_id`
    and, on a conversation with branches, among `message_ids` (the branch's)."""

    conversation_id: int
    before_id: int
    message_ids: tuple[int, ...] | None = None

    def where(self) -> tuple[str, list]:
        sql = "conversation_id = %s AND message_id < %s"
        params: list = [self.conversation_id, self.before_id]
        if self.message_ids is not None:
            sql += " AND message_id = ANY(%s)"
            params.append(list(self.message_ids))
        return sql, params


def content_words(text: str) -> list[str]:
    """The words of `text` that say what it is about (no stop words, no single letters)."""
    return [w for w in _WORD.findall(text.lower()) if len(w) > 1 and w not in _STOP_WORDS]


def nearest(
    *, scope: Scope, vector: Sequence[float], embedding_model: str, limit: int
) -> list[Candidate]:
    """`limit` chunks in `scope` near to `vector` (cosine): the nearest first, then each
    the nearest of those unlike the ones before it."""
    size, literal = len(vector), vector_literal(vector)
    where, params = scope.where()
    # The size is written into the statement, not passed: an index's WHERE dimensions = 384
    # is only used when the query's condition is the same literal. Iterative scans (pgvector
    # 0.8) keep the HNSW index searching until enough rows pass the conversation filter.
    # vector_send() hands the vectors over as bytes (parsing their text would cost more
    # than the whole query), and only the pool's: outside the subquery it would run on
    # every row before the sort.
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        cursor.execute(
            "SELECT id, message_id, distance, vector_send(embedding) FROM ("
            f" SELECT id, message_id, embedding,"
            f" (embedding::vector({size})) <=> %s::vector({size}) AS distance"
            f" FROM {CHUNK} WHERE {where} AND dimensions = {size} AND embedding_model = %s"
            f" ORDER BY (embedding::vector({size})) <=> %s::vector({size}) LIMIT %s"
            ") AS pool ORDER BY distance",
            [literal, *params, embedding_model, literal, limit * DIVERSITY_POOL],
        )
        rows = cursor.fetchall()
    if not rows:
        return []
    # pgvector's binary form: two 16-bit words (size, unused), then big-endian float4s.
    vectors = np.stack([np.frombuffer(row[3], dtype=">f4", offset=4) for row in rows])
    return [
        Candidate(rows[i][0], rows[i][1], 1.0 - float(rows[i][2]))
        for i in diverse_order(vector, vectors, limit)
    ]


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
    size, literal = len(vector), vector_literal(vector)
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


def lexical(*, scope: Scope, query: str, limit: int) -> list[Candidate]:
    """The chunks in `scope` that share the query's telling words (full-text, any of them),
    or, with pg_trgm, a run of its characters (Chinese, a Latin word inside Chinese text),
    best first. For a Chinese query the trigram matches lead."""
    words = sorted(set(content_words(query)), key=len, reverse=True)[:MAX_QUERY_WORDS]
    found = _full_text(scope, words, limit) if words else []
    if not _has_trigrams(query):
        return found
    if trigrams_available() and (has_cjk(query) or len(found) < limit):
        by_characters = _trigram(scope, query, limit)
        first, second = (by_characters, found) if has_cjk(query) else (found, by_characters)
        seen = {c.chunk_id for c in first}
        found = (first + [c for c in second if c.chunk_id not in seen])[:limit]
    return found


def _has_trigrams(query: str) -> bool:
    """Whether the query has a letter or digit for trigrams to match. One without ("?",
    "…") leaves pg_trgm no trigram to look up, and it compares the query with every chunk
    instead: 1.9 s at 10,000 chunks."""
    return _WORD.search(query) is not None


def _full_text(scope: Scope, words: list[str], limit: int) -> list[Candidate]:
    where, params = scope.where()
    tsquery = " or ".join(words)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, message_id, ts_rank(search_vector, q) AS score FROM ("
            f" SELECT id, message_id, search_vector FROM {CHUNK}"
            f" WHERE {where} AND search_vector @@ websearch_to_tsquery('simple', %s) LIMIT %s"
            ") AS matched, websearch_to_tsquery('simple', %s) AS q"
            " ORDER BY score DESC, id DESC LIMIT %s",
            [*params, tsquery, FULL_TEXT_ROWS, tsquery, limit],
        )
        return [Candidate(c, m, float(s)) for c, m, s in cursor.fetchall()]


def _trigram(scope: Scope, query: str, limit: int) -> list[Candidate]:
    where, params = scope.where()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL pg_trgm.word_similarity_threshold = {TRIGRAM_THRESHOLD}")
        cursor.execute(
            f"SELECT id, message_id, word_similarity(%s, text) AS score FROM {CHUNK}"
            f" WHERE {where} AND %s <%% text"  # <% (word similarity), % doubled for the driver
            " ORDER BY score DESC, id DESC LIMIT %s",
            [query, *params, query, limit],
        )
        return [Candidate(c, m, float(s)) for c, m, s in cursor.fetchall()]
