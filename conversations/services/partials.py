"""Saving the text so far of streaming replies: each save is also the reply's heartbeat."""

from typing import Any, NamedTuple

from django.db import connection
from django.utils import timezone

from conversations.models import Message, MessageStatus
from conversations.services.replies import SWEPT


class Partial(NamedTuple):
    reply_id: int
    content: str
    reasoning: str


# One statement text however many replies, their values passed as three arrays. psycopg
# parses a statement's placeholders in Python unless it has the text cached: with the CASE
# form, a save of 250 replies held the GIL ~30 ms, and every stream in the process waited.
SAVE_PARTIALS_SQL = f"""
UPDATE {Message._meta.db_table} AS m
SET content = p.content, reasoning = p.reasoning, heartbeat_at = %s
FROM unnest(%s::bigint[], %s::text[], %s::text[]) AS p(id, content, reasoning)
WHERE m.id = p.id
  AND (m.status = %s OR (m.status = %s AND m.error_code = %s))
"""


def replies_save_partial(*, partials: list[Partial]) -> int:
    """Persist the text so far of many streaming replies in one statement (also their
    heartbeat); a reply that has meanwhile ended keeps its final text, unless a sweep ended
    it: its generator is alive after all, and what it has is the reply's text. Returns how
    many were saved."""
    if not partials:
        return 0
    ids, contents, reasonings = (list(column) for column in zip(*partials, strict=True))
    params: list[Any] = [timezone.now(), ids, contents, reasonings, MessageStatus.STREAMING]
    params += [MessageStatus.INTERRUPTED, SWEPT]
    with connection.cursor() as cursor:
        cursor.execute(SAVE_PARTIALS_SQL, params)
        return cursor.rowcount
