"""Background jobs: Celery when a broker is configured, otherwise a thread of this process.

Either way a job starts only after the current transaction commits, and never on the event
loop: a reply never waits for one. A job is named by its Celery task (conversations.tasks,
which only loads by id and calls the service) and carries the service itself for the
in-process path, so the services that queue jobs never import the tasks that run them.
"""

import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any

from celery import current_app
from django.conf import settings
from django.db import close_old_connections, transaction

from conversations.errors import ProviderError
from conversations.observability import metrics

log = logging.getLogger(__name__)

# Two threads for recall's indexing, one for summaries and titles (as Celery gives them a
# queue of their own): a burst must not starve the server's own threads, and a summary
# must not wait behind the indexing of a busy chat.
_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="chatsite-job")
_context_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chatsite-context")

_running: set[Future] = set()
_running_lock = threading.Lock()

IN_PROCESS_RETRIES = 5

# The Celery tasks' names (conversations.tasks registers them under these).
SUMMARISE_CONVERSATION = "conversations.tasks.summarise_conversation"
TITLE_CONVERSATION = "conversations.tasks.title_conversation"
INDEX_MESSAGES = "conversations.tasks.index_messages"
INDEX_CONVERSATION = "conversations.tasks.index_conversation"
# A provider incident's one e-mail: an SMTP server's pace is no reply's business.
EMAIL_PROVIDER_INCIDENT = "conversations.tasks.email_provider_incident"
# A large upload's import (services/imports/import_jobs.py), from its file on disk.
IMPORT_CONVERSATIONS = "conversations.tasks.import_conversations"
# Jobs a chat waits on to stay whole: their own queue (settings.CELERY_TASK_ROUTES).
CONTEXT_JOBS = frozenset({SUMMARISE_CONVERSATION, TITLE_CONVERSATION})


def enqueue(task_name: str, service: Callable[..., Any], **kwargs: Any) -> None:
    """Run `service(**kwargs)` in the background once the surrounding transaction commits:
    as the Celery task `task_name` on a worker, or in this process without a broker."""
    if settings.CELERY_BROKER_URL:
        transaction.on_commit(lambda: current_app.send_task(task_name, kwargs=kwargs))
    else:
        transaction.on_commit(lambda: _submit(task_name, service, kwargs))


def _submit(task_name: str, service: Callable[..., Any], kwargs: dict) -> None:
    executor = _context_executor if task_name in CONTEXT_JOBS else _executor
    future = executor.submit(_run_in_process, task_name, service, kwargs)
    with _running_lock:
        _running.add(future)
    future.add_done_callback(_forget)


def _forget(future: Future) -> None:
    with _running_lock:
        _running.discard(future)


def in_process_backlog() -> dict[str, int]:
    """Jobs waiting for a thread of this process, per queue (as Celery would name it)."""
    # The executors' own queues: what was submitted and has not started yet.
    return {
        "celery": _executor._work_queue.qsize(),
        "context": _context_executor._work_queue.qsize(),
    }


def wait_for_in_process_jobs(timeout: float) -> bool:
    """Block until every in-process job queued so far has ended (True), or `timeout`
    seconds pass (False). The test suite calls it before it empties the database, which a
    job still writing would otherwise deadlock against."""
    with _running_lock:
        running = set(_running)
    if not running:
        return True
    _, not_done = wait(running, timeout=timeout)
    return not not_done


def _run_in_process(task_name: str, service: Callable[..., Any], kwargs: dict) -> None:
    """The service, retried like the Celery task would be: exponential backoff with full
    jitter."""
    for attempt in range(IN_PROCESS_RETRIES + 1):
        close_old_connections()
        try:
            service(**kwargs)
            metrics.job_ended(task_name, "ok")
            return
        except ProviderError:
            if attempt == IN_PROCESS_RETRIES:
                log.warning("background job %s gave up after %d tries", task_name, attempt + 1)
                metrics.job_ended(task_name, "failed")
                return
            metrics.job_ended(task_name, "retry")
            time.sleep(random.uniform(0, min(300, 2 ** (attempt + 1))))
        except Exception:
            log.exception("background job %s failed", task_name)
            metrics.job_ended(task_name, "failed")
            return
        finally:
            close_old_connections()
