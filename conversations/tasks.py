"""Celery tasks: load by id, call one service, own the retry policy."""

from celery import shared_task

from conversations import background_jobs, services
from conversations.errors import ProviderError


@shared_task(
    name=background_jobs.SUMMARISE_CONVERSATION,
    bind=True,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(ProviderError,),
    retry_backoff=2,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=5,
)
def summarise_conversation(self, conversation_id: int, leaf_id: int, through_id: int | None = None):
    """Condense the older uncovered turns of the thread ending at `leaf_id`."""
    summary = services.summary_create(
        conversation_id=conversation_id, leaf_id=leaf_id, through_id=through_id
    )
    return summary.pk if summary else None


@shared_task(
    name=background_jobs.TITLE_CONVERSATION,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(ProviderError,),
    retry_backoff=2,
    retry_jitter=True,
    max_retries=3,
)
def title_conversation(conversation_id: int):
    """Give a conversation a short generated title after its first exchange."""
    return services.title_generate(conversation_id=conversation_id)


# Recall's indexing: idempotent (a re-run replaces chunks), so a redelivered task is safe.
@shared_task(
    name=background_jobs.INDEX_MESSAGES,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(ProviderError,),
    retry_backoff=2,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=5,
)
def index_messages(message_ids: list[int]):
    """Embed finished messages into recall's chunks."""
    return services.messages_index(message_ids=message_ids)


@shared_task(
    name=background_jobs.INDEX_CONVERSATION,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(ProviderError,),
    retry_backoff=2,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=5,
)
def index_conversation(conversation_id: int):
    """Embed every not yet indexed message of a conversation (after an import)."""
    return services.conversation_index(conversation_id=conversation_id)
