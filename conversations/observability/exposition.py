"""GET /metrics: every process's samples of this host, in Prometheus' text format.

Off (404) unless METRICS_ENABLED. With METRICS_TOKEN set a scrape must send it as a bearer
token; without one only addresses in METRICS_ALLOWED_NETWORKS may scrape (behind the
proxy, which refuses /metrics from outside anyway, daphne's --proxy-headers makes that the
client's address). Besides the multiprocess samples, a scrape reads two things live: each
process's open file descriptors and their limit, and the jobs waiting in each queue.
"""

import hmac
import ipaddress
import logging
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from chatsite.brief_redis import brief_redis
from conversations import background_jobs

log = logging.getLogger(__name__)

QUEUES = ("celery", "context")
BROKER_TIMEOUT_SECONDS = 1.0
# Kombu's Redis transport keeps a queue's messages of each priority in a list of its own.
REDIS_PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")
_PID_IN_NAME = re.compile(r"_(\d+)\.db$")


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    if not settings.METRICS_ENABLED:
        raise Http404("metrics are off")
    refusal = _refusal(request)
    if refusal is not None:
        return refusal
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)


def _refusal(request: HttpRequest) -> HttpResponse | None:
    token = settings.METRICS_TOKEN
    if token:
        sent = request.headers.get("Authorization", "")
        if hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            return None
        response = HttpResponse("a bearer token is required\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if _internal(request.META.get("REMOTE_ADDR", "")):
        return None
    return HttpResponse("metrics are served to internal addresses only\n", status=403)


def _internal(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(
        ip in ipaddress.ip_network(network, strict=False)
        for network in settings.METRICS_ALLOWED_NETWORKS
    )


def registry() -> CollectorRegistry:
    """Every process's samples of this host's folder, and the live readings."""
    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    scraped = CollectorRegistry()
    # First: it removes a dead process's live gauges before the samples are read.
    scraped.register(FileDescriptors(folder))
    MultiProcessCollector(scraped, path=str(folder))
    scraped.register(QueueDepth())
    return scraped


def serve_worker_metrics() -> None:
    """A Celery worker's own /metrics (it has no web server): prometheus-client's HTTP
    server on METRICS_WORKER_ADDRESS:METRICS_WORKER_PORT, in a thread of the worker. No
    token there: bind it to an address only the scraper reaches."""
    if settings.METRICS_ENABLED and settings.METRICS_WORKER_PORT:
        start_http_server(
            settings.METRICS_WORKER_PORT, addr=settings.METRICS_WORKER_ADDRESS, registry=registry()
        )


def _live_pids(folder: Path) -> set[int]:
    """The processes that wrote samples here and still run; a dead one's live gauges (replies
    in flight, open sockets) are removed so they stop counting. Its counters stay: they are
    what it did."""
    pids = {int(m.group(1)) for p in folder.iterdir() if (m := _PID_IN_NAME.search(p.name))}
    pids.add(os.getpid())
    alive = {pid for pid in pids if psutil.pid_exists(pid)}
    for pid in pids - alive:
        mark_process_dead(pid, str(folder))
    return alive


class FileDescriptors(Collector):
    """Open file descriptors and their limit, per live process of this host."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def collect(self) -> Iterator[Metric]:
        open_fds = GaugeMetricFamily(
            "chatsite_process_open_fds", "Open file descriptors.", labels=["pid"]
        )
        max_fds = GaugeMetricFamily(
            "chatsite_process_max_fds", "The file descriptor limit (soft).", labels=["pid"]
        )
        for pid in sorted(_live_pids(self.folder)):
            try:
                process = psutil.Process(pid)
                count, (soft, _) = process.num_fds(), process.rlimit(psutil.RLIMIT_NOFILE)
            except (psutil.Error, OSError):  # gone, or not ours to read
                continue
            open_fds.add_metric([str(pid)], count)
            max_fds.add_metric([str(pid)], soft)
        yield open_fds
        yield max_fds


class QueueDepth(Collector):
    """Jobs waiting in each queue: the broker's, or this process's own threads' without one."""

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily(
            "chatsite_job_queue_depth", "Background jobs waiting to run.", labels=["queue"]
        )
        try:
            waiting = _waiting_jobs()
        except Exception as exc:  # a broker that does not answer leaves the series out
            log.warning("queue depth unavailable: %s", type(exc).__name__)
            waiting = {}
        for queue, count in waiting.items():
            depth.add_metric([queue], count)
        yield depth


def _waiting_jobs() -> dict[str, int]:
    url = settings.CELERY_BROKER_URL
    if not url:
        return background_jobs.in_process_backlog()
    if url.startswith(("redis://", "rediss://")):
        with brief_redis(url, timeout=BROKER_TIMEOUT_SECONDS) as client:
            return {
                q: sum(client.llen(q + suffix) for suffix in REDIS_PRIORITY_SUFFIXES)
                for q in QUEUES
            }
    from kombu import Connection

    with Connection(url, connect_timeout=BROKER_TIMEOUT_SECONDS) as broker:
        channel: Any = broker.default_channel  # kombu's stubs type it as StdChannel
        return {q: channel.queue_declare(queue=q, passive=True).message_count for q in QUEUES}
