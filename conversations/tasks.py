"""Celery tasks: load by id, call one service, own the retry policy."""

from typing import Any

from celery import shared_task
from celery.signals import task_postrun, worker_ready

from conversations import background_jobs, services
from conversations.errors import ProviderError
from conversations.observability import exposition, metrics

# Every task is safe to run twice (each service checks or claims before it writes): acked
# after the work, redelivered when a worker dies, retried on provider errors with backoff.
RETRIED: dict[str, Any] = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (ProviderError,),
    "retry_backoff": 2,
    "retry_backoff_max": 300,
    "retry_jitter": True,
}


@shared_task(name=background_jobs.SUMMARISE_CONVERSATION, bind=True, max_retries=5, **RETRIED)
def summarise_conversation(
    self, conversation_id: int, leaf_id: int | None = None, through_id: int | None = None
):
    """Condense the older uncovered turns of the thread ending at `leaf_id` (by default the
    branch on screen when the job runs)."""
    summary = services.summary_create(
        conversation_id=conversation_id, leaf_id=leaf_id, through_id=through_id
    )
    return summary.pk if summary else None


@shared_task(name=background_jobs.TITLE_CONVERSATION, max_retries=3, **RETRIED)
def title_conversation(conversation_id: int):
    """Give a conversation a short generated title after its first exchange."""
    return services.title_generate(conversation_id=conversation_id)


# Recall's indexing: a re-run replaces a message's chunks, never adds more.
@shared_task(name=background_jobs.INDEX_MESSAGES, max_retries=5, **RETRIED)
def index_messages(message_ids: list[int]):
    """Embed finished messages into recall's chunks."""
    return services.messages_index(message_ids=message_ids)


@shared_task(name=background_jobs.INDEX_CONVERSATION, max_retries=5, **RETRIED)
def index_conversation(conversation_id: int):
    """Embed every not yet indexed message of a conversation (after an import)."""
    return services.conversation_index(conversation_id=conversation_id)


# Not retried, nor acked late: an incident's e-mail goes at most once (the service claims it).
@shared_task(name=background_jobs.EMAIL_PROVIDER_INCIDENT)
def email_provider_incident(incident_id: int):
    """Tell staff (and ALERT_EMAILS) that a provider/model crossed a health threshold."""
    return services.provider_incident_email(incident_id=incident_id)


# Not retried: the job claims its row (QUEUED -> RUNNING) and ends it done or failed itself;
# a second delivery finds it claimed and does nothing.
# A years-long export takes minutes, not the default limit's seconds.
@shared_task(name=background_jobs.IMPORT_CONVERSATIONS, time_limit=3600, soft_time_limit=3540)
def import_conversations(import_job_id: int):
    """Import a large upload from its file, in two streamed passes (check, then write)."""
    job = services.import_job_run(import_job_id=import_job_id)
    return job.status if job else None


# Celery's task states, as the metrics name a job's end.
_JOB_OUTCOMES = {"SUCCESS": "ok", "RETRY": "retry", "FAILURE": "failed"}


@task_postrun.connect
def _count_job(sender=None, state: str | None = None, **_: Any) -> None:
    if sender is not None and state in _JOB_OUTCOMES:
        metrics.job_ended(sender.name, _JOB_OUTCOMES[state])


@worker_ready.connect
def _serve_metrics(**_: Any) -> None:
    exposition.serve_worker_metrics()


@worker_ready.connect
def _fail_stale_import_jobs(**_: Any) -> None:
    """A worker starting is often one restarting: an import it ran and whose heartbeat has
    stopped is failed now, as a serving process's sweeper would fail it later."""
    services.import_jobs_fail_stale()
