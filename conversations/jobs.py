"""Background jobs: Celery when a broker is configured, otherwise a thread of this process.

Either way a job starts only after the current transaction commits, and never on the event
loop: a reply never waits for one.
"""

import logging
import random
import time
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import close_old_connections, transaction

log = logging.getLogger(__name__)

# Two threads: summaries are rare, and a burst must not starve the server's own threads.
_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="chatsite-job")


def enqueue(task, *args) -> None:
    """Run `task(*args)` in the background once the surrounding transaction commits."""
    if settings.CELERY_BROKER_URL:
        task.delay_on_commit(*args)
    else:
        transaction.on_commit(lambda: _executor.submit(_run_in_process, task, args))


IN_PROCESS_RETRIES = 5


def _run_in_process(task, args) -> None:
    """The task body, retried like Celery would: exponential backoff with full jitter."""
    from conversations.errors import ProviderError

    for attempt in range(IN_PROCESS_RETRIES + 1):
        close_old_connections()
        try:
            task(*args)
            return
        except ProviderError:
            if attempt == IN_PROCESS_RETRIES:
                log.warning("background job %s gave up after %d tries", task.name, attempt + 1)
                return
            time.sleep(random.uniform(0, min(300, 2 ** (attempt + 1))))
        except Exception:
            log.exception("background job %s failed", task.name)
            return
        finally:
            close_old_connections()
