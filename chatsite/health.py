"""Health checks for load balancers and orchestrators.

`/healthz`: the process answers (nothing else is touched, so a slow database never gets a
healthy server restarted). `/readyz`: it can serve: the database answers and has every
migration applied, the channel layer's Redis and the Celery broker (where configured) are
reachable. Each check has a short timeout and says what failed; no secrets are shown.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from chatsite.brief_redis import brief_redis

CHECK_TIMEOUT_SECONDS = 2


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    ms: float


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return "answers"


def _migrations() -> str:
    executor = MigrationExecutor(connection)
    pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if pending:
        names = ", ".join(f"{m.app_label}.{m.name}" for m, _ in pending[:5])
        raise RuntimeError(f"{len(pending)} not applied: {names}")
    return "all applied"


def _redis(url: str) -> str:
    with brief_redis(url, timeout=CHECK_TIMEOUT_SECONDS) as client:
        client.ping()
    return "answers"


def _channel_layer() -> str:
    if not settings.REDIS_URL:
        return "in memory (one process)"
    return _redis(settings.REDIS_URL)


def _broker() -> str:
    url = settings.CELERY_BROKER_URL
    if not url:
        return "none (jobs run in-process)"
    if url.startswith(("redis://", "rediss://")):
        return _redis(url)
    from kombu import Connection

    with Connection(url, connect_timeout=CHECK_TIMEOUT_SECONDS) as broker:
        broker.ensure_connection(max_retries=1, timeout=CHECK_TIMEOUT_SECONDS)
    return "answers"


CHECKS: dict[str, Callable[[], str]] = {
    "database": _database,
    "migrations": _migrations,
    "channel_layer": _channel_layer,
    "broker": _broker,
}


def readiness() -> list[Check]:
    """Every check, run in order; one failing does not stop the others."""
    results = []
    for name, check in CHECKS.items():
        started = time.monotonic()
        try:
            detail, ok = check(), True
        except Exception as exc:  # a failing check is the answer, whatever it raised
            detail, ok = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}", False
        results.append(Check(name, ok, detail, round((time.monotonic() - started) * 1000, 1)))
    return results


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    checks = readiness()
    ready = all(c.ok for c in checks)
    body = {
        "status": "ready" if ready else "not ready",
        "checks": {c.name: {"ok": c.ok, "detail": c.detail, "ms": c.ms} for c in checks},
    }
    return JsonResponse(body, status=200 if ready else 503)
