"""Writing recall's index: a finished message's chunks and their vectors."""

import logging

from django.db import transaction

from conversations.models import Message, MessageStatus, Role
from conversations.recall import embedders, store
from conversations.recall.chunks import split_into_chunks
from conversations.recall.embedders import Embedder

log = logging.getLogger(__name__)

INDEXED_ROLES = (Role.USER, Role.ASSISTANT)


def message_index(*, message_id: int, embedder: Embedder | None = None) -> int:
    """One message's chunks (see messages_index)."""
    return messages_index(message_ids=[message_id], embedder=embedder)


def messages_index(*, message_ids: list[int], embedder: Embedder | None = None) -> int:
    """Cut finished messages into chunks and embed them (one batch for all), replacing any
    they had: a re-run never duplicates. Returns the chunks written; a message that is
    gone, still streaming, empty or not a turn gets none. An embedder failure raises before
    anything is written: the messages themselves are never touched, and the job retries."""
    messages = [
        m
        for m in Message.objects.filter(pk__in=message_ids)
        .only("id", "conversation_id", "role", "status", "content")
        .order_by("id")
        if _indexable(m)
    ]
    if not messages:
        return 0
    embedder = embedder or embedders.current()
    texts = {m.id: split_into_chunks(m.content) for m in messages}
    vectors: dict[int, list[list[float]] | None] = {m.id: None for m in messages}
    if store.vectors_available():
        flat = [text for m in messages for text in texts[m.id]]
        embedded = iter(embedder.passages(flat).vectors) if flat else iter(())
        vectors = {m.id: [next(embedded) for _ in texts[m.id]] for m in messages}
    with transaction.atomic():
        # Changed or deleted while we embedded? Such a message keeps no chunks of its old text.
        current = dict(
            Message.objects.select_for_update()
            .filter(pk__in=[m.id for m in messages])
            .values_list("id", "content")
        )
        return sum(
            store.chunks_replace(
                message_id=m.id,
                conversation_id=m.conversation_id,
                texts=texts[m.id],
                vectors=vectors[m.id],
                embedding_model=embedder.name,
            )
            for m in messages
            if current.get(m.id) == m.content
        )


def _indexable(message: Message) -> bool:
    return (
        message.role in INDEXED_ROLES
        and message.status in MessageStatus.REUSABLE
        and bool(message.content.strip())
    )
