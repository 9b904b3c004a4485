"""The app's Prometheus series, and one small function per event that records them.

Recording does nothing unless METRICS_ENABLED: then prometheus-client runs in multiprocess
mode (PROMETHEUS_MULTIPROC_DIR, set by the settings), so every daphne process and Celery
worker of a host writes its samples to files there and a scrape of any process sums them.
Label values are bounded: provider slugs and model names from the catalogue, our own
outcome and error codes, status classes; never a user or a conversation.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from prometheus_client import Counter, Gauge, Histogram

# Seconds: a first token within a second is good, past ten is what users notice.
TTFT_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 10, 15, 20, 30, 60)
DURATION_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

REPLY_TTFT = Histogram(
    "chatsite_reply_ttft_seconds",
    "Time from a reply's start to its first token.",
    ["provider", "model"],
    buckets=TTFT_BUCKETS,
)
REPLY_DURATION = Histogram(
    "chatsite_reply_duration_seconds",
    "Time from a reply's start to its end, however it ended.",
    ["provider", "model"],
    buckets=DURATION_BUCKETS,
)
REPLIES = Counter(
    "chatsite_replies",
    "Replies ended, by outcome (complete, cancelled, failed, interrupted, truncated) and "
    "error class (our error code; empty when none).",
    ["provider", "model", "outcome", "error_class"],
)
REPLIES_IN_FLIGHT = Gauge(
    "chatsite_replies_in_flight",
    "Replies being generated now.",
    multiprocess_mode="livesum",
)
UPSTREAM_ERRORS = Counter(
    "chatsite_upstream_errors",
    "Provider HTTP calls that failed, by endpoint (the provider's host) and status class: "
    "4xx or 5xx (each attempt the SDK retried too), timeout or connection when none came.",
    ["endpoint", "status_class"],
)
TOKENS = Counter(
    "chatsite_tokens",
    "Tokens of upstream calls as the ledger records them, by kind of call and direction.",
    ["provider", "model", "kind", "direction"],
)
COST = Counter(
    "chatsite_cost",
    "Cost of upstream calls as the ledger prices them, in each currency's units.",
    ["provider", "model", "currency"],
)
WEBSOCKETS_OPEN = Gauge(
    "chatsite_websockets_open",
    "Chat sockets open now.",
    multiprocess_mode="livesum",
)
JOBS = Counter(
    "chatsite_jobs",
    "Background jobs ended (summary, title, index), by outcome (ok, retry, failed).",
    ["job", "outcome"],
)
HTTP_RESPONSES = Counter(
    "chatsite_http_responses",
    "HTTP responses by method and status class.",
    ["method", "status_class"],
)
HTTP_DURATION = Histogram(
    "chatsite_http_request_duration_seconds",
    "Time from an HTTP request to its response's start.",
    ["method"],
    buckets=HTTP_BUCKETS,
)

# Celery task name -> the job label (conversations.background_jobs names them).
JOB_NAMES = {
    "conversations.tasks.summarise_conversation": "summary",
    "conversations.tasks.title_conversation": "title",
    "conversations.tasks.index_messages": "index",
    "conversations.tasks.index_conversation": "index",
}


def enabled() -> bool:
    return settings.METRICS_ENABLED


def status_class(status: int) -> str:
    return f"{status // 100}xx"


def reply_ended(
    *,
    provider: str,
    model: str,
    outcome: str,
    error_class: str,
    ttft_ms: int | None,
    duration_ms: int | None,
) -> None:
    if not enabled():
        return
    REPLIES.labels(provider, model, outcome, error_class).inc()
    if ttft_ms is not None:
        REPLY_TTFT.labels(provider, model).observe(ttft_ms / 1000)
    if duration_ms is not None:
        REPLY_DURATION.labels(provider, model).observe(duration_ms / 1000)


@contextmanager
def reply_in_flight() -> Iterator[None]:
    if not enabled():
        yield
        return
    REPLIES_IN_FLIGHT.inc()
    try:
        yield
    finally:
        REPLIES_IN_FLIGHT.dec()


def upstream_failed(*, url: object, status_class: str) -> None:
    if enabled():
        UPSTREAM_ERRORS.labels(_endpoint(url), status_class).inc()


def upstream_responded(response: Any) -> None:
    """An HTTP client's response hook (httpx2): every error status, retried or not."""
    if response.status_code >= 400:
        upstream_failed(url=response.request.url, status_class=status_class(response.status_code))


async def upstream_responded_async(response: Any) -> None:
    upstream_responded(response)


def _endpoint(url: object) -> str:
    """host[:port] of a provider URL: a bounded label, unlike the path."""
    netloc = urlsplit(str(url)).netloc
    return netloc.rpartition("@")[2] or "unknown"


def usage_recorded(
    *,
    provider: str,
    model: str,
    kind: str,
    prompt_tokens: int,
    completion_tokens: int,
    cost: Decimal,
    currency: str,
) -> None:
    """One closed ledger record: its tokens and cost."""
    if not enabled():
        return
    if prompt_tokens:
        TOKENS.labels(provider, model, kind, "input").inc(prompt_tokens)
    if completion_tokens:
        TOKENS.labels(provider, model, kind, "output").inc(completion_tokens)
    if cost:
        COST.labels(provider, model, currency).inc(float(cost))


def websocket_opened() -> None:
    if enabled():
        WEBSOCKETS_OPEN.inc()


def websocket_closed() -> None:
    if enabled():
        WEBSOCKETS_OPEN.dec()


def job_ended(task_name: str, outcome: str) -> None:
    if enabled():
        JOBS.labels(JOB_NAMES.get(task_name, "other"), outcome).inc()


def http_responded(*, method: str, status: int, started: float) -> None:
    if not enabled():
        return
    method = method if method in HTTP_METHODS else "other"
    HTTP_RESPONSES.labels(method, status_class(status)).inc()
    HTTP_DURATION.labels(method).observe(time.monotonic() - started)
