"""Writing recall's index: a finished message's chunks and their vectors."""

import logging

from django.db import transaction

from conversations.models import Message, MessageStatus, Role
from conversations.recall import store
from conversations.recall.chunks import split_into_chunks
from conversations.recall.embedders import Embedder, bundled

log = logging.getLogger(__name__)

INDEXED_ROLES = (Role.USER, Role.ASSISTANT)


def recall_embedder() -> Embedder:
    """The embedder chunks and queries go through: the bundled one unless EMBEDDING_MODEL
    names a provider's."""
    return bundled()


def message_index(*, message_id: int, embedder: Embedder | None = None) -> int:
    """Cut a finished message into chunks and embed them, replacing any it had (a re-run
    never duplicates). Returns the chunks written; 0 for a message that is gone, still
    streaming, empty or not a turn. An embedder failure raises before anything is
    written: the message itself is never touched, and the job is retried."""
    message = (
        Message.objects.filter(pk=message_id)
        .only("id", "conversation_id", "role", "status", "content")
        .first()
    )
    if message is None or not _indexable(message):
        return 0
    embedder = embedder or recall_embedder()
    texts = split_into_chunks(message.content)
    vectors = None
    if texts and store.vectors_available():
        vectors = embedder.passages(texts).vectors
    with transaction.atomic():
        # Settled while we embedded? A message that is gone or changed keeps no chunks of
        # the old text.
        current = Message.objects.select_for_update().filter(pk=message_id).first()
        if current is None or current.content != message.content:
            return 0
        return store.chunks_replace(
            message_id=message.id,
            conversation_id=message.conversation_id,
            texts=texts,
            vectors=vectors,
            embedding_model=embedder.name,
        )


def _indexable(message: Message) -> bool:
    return (
        message.role in INDEXED_ROLES
        and message.status in MessageStatus.REUSABLE
        and bool(message.content.strip())
    )
