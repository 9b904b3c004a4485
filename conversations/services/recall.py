"""Writing recall's index: a finished message's chunks and their vectors."""

from collections.abc import Callable
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef

from conversations import background_jobs
from conversations.models import Conversation, Message, MessageChunk, MessageStatus, Role
from conversations.providers.presets import embedding_preset
from conversations.recall import embedders, store
from conversations.recall.chunks import split_into_chunks
from conversations.recall.embedders import Embedded, Embedder
from conversations.services.ledger import embedding_usage_record_create

if TYPE_CHECKING:
    from django.db.models import QuerySet

INDEXED_ROLES = (Role.USER, Role.ASSISTANT)
# Messages embedded per batch when a whole conversation is indexed (an import, a reindex).
INDEX_BATCH = 64


def recall_schedule(*, message_ids: list[int]) -> None:
    """Index these messages in the background once the current transaction commits."""
    if settings.RECALL_ENABLED and message_ids:
        background_jobs.enqueue(
            background_jobs.INDEX_MESSAGES, messages_index, message_ids=list(message_ids)
        )


def conversation_recall_schedule(*, conversation_id: int) -> None:
    """Index a whole conversation in the background (after an import)."""
    if settings.RECALL_ENABLED:
        background_jobs.enqueue(
            background_jobs.INDEX_CONVERSATION, conversation_index, conversation_id=conversation_id
        )


def messages_to_index(
    *, conversation_id: int | None = None, embedding_model: str | None = None
) -> "QuerySet[Message]":
    """Finished turns without chunks, or (given `embedding_model`) without chunks embedded
    by that model: what a backfill or a re-embedding still has to do."""
    chunks = MessageChunk.objects.filter(message=OuterRef("pk"))
    if embedding_model is not None:
        chunks = chunks.filter(embedding_model=embedding_model)
    pending = Message.objects.filter(
        role__in=INDEXED_ROLES, status__in=MessageStatus.REUSABLE
    ).exclude(content="")
    if conversation_id is not None:
        pending = pending.filter(conversation_id=conversation_id)
    return pending.filter(~Exists(chunks)).order_by("id")


def pending_index(
    *,
    pending: "QuerySet[Message]",
    embedder: Embedder | None = None,
    on_batch: Callable[[int, int], None] | None = None,
) -> tuple[int, int]:
    """Index the `pending` messages in id order, INDEX_BATCH at a time, each batch after
    the last id of the one before: a message that yields no chunks (blank, or changed as it
    was embedded) is passed, never met again. Returns (messages gone through, chunks
    written); `on_batch` hears the same after each batch."""
    done = chunks = last_id = 0
    while batch := list(pending.filter(id__gt=last_id).values_list("id", flat=True)[:INDEX_BATCH]):
        chunks += messages_index(message_ids=batch, embedder=embedder)
        done, last_id = done + len(batch), batch[-1]
        if on_batch is not None:
            on_batch(done, chunks)
    return done, chunks


def conversation_index(*, conversation_id: int, embedder: Embedder | None = None) -> int:
    """Index every message of the conversation that has no chunks yet: an interrupted run
    resumes where it stopped. Returns the chunks written."""
    pending = messages_to_index(conversation_id=conversation_id)
    return pending_index(pending=pending, embedder=embedder)[1]


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
    by_conversation: dict[int, list[Message]] = {}
    for message in messages:
        by_conversation.setdefault(message.conversation_id, []).append(message)
    return sum(
        _index_conversation_messages(conversation_id, group, embedder)
        for conversation_id, group in by_conversation.items()
    )


def _index_conversation_messages(
    conversation_id: int, messages: list[Message], embedder: Embedder
) -> int:
    """One conversation's messages: one embedding batch, billed to its owner."""
    texts = {m.id: split_into_chunks(m.content) for m in messages}
    vectors: dict[int, list[list[float]] | None] = {m.id: None for m in messages}
    flat = [text for m in messages for text in texts[m.id]]
    if flat and store.vectors_available():
        embedded = embedder.passages(flat)
        _bill(conversation_id, embedded)
        remaining = iter(embedded.vectors)
        vectors = {m.id: [next(remaining) for _ in texts[m.id]] for m in messages}
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
                conversation_id=conversation_id,
                texts=texts[m.id],
                vectors=vectors[m.id],
                embedding_model=embedder.name,
            )
            for m in messages
            if current.get(m.id) == m.content
        )


def recall_query_usage_record(*, conversation: Conversation, recalled: dict) -> None:
    """Bill a recall query's embedding, when a provider made it (the context records it)."""
    tokens = recalled.get("embedding_tokens") or 0
    preset = embedding_preset(*(recalled.get("embedding_billed") or ("", "")))
    if tokens and preset is not None:
        embedding_usage_record_create(
            user_id=conversation.owner_id,
            conversation=conversation,
            preset=preset,
            prompt_tokens=tokens,
        )


def _bill(conversation_id: int, embedded: Embedded) -> None:
    if embedded.billed is None:
        return  # the bundled embedder: no provider, nothing to pay
    owner_id = Conversation.objects.values_list("owner_id", flat=True).get(pk=conversation_id)
    embedding_usage_record_create(
        user_id=owner_id,
        conversation=Conversation(pk=conversation_id, owner_id=owner_id),
        preset=embedded.billed,
        prompt_tokens=embedded.prompt_tokens,
        reported=embedded.usage_reported,
    )


def _indexable(message: Message) -> bool:
    return (
        message.role in INDEXED_ROLES
        and message.status in MessageStatus.REUSABLE
        and bool(message.content.strip())
    )
