"""Where sends, generators and the saver do their database work."""

from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar, cast

from channels.db import DatabaseSyncToAsync, database_sync_to_async

P = ParamSpec("P")
R = TypeVar("R")

# The heartbeat's own thread: a pool whose threads all wait (on a slow query, on a stalled
# Redis behind the cache or the broker) must not delay the one write that tells other
# processes this one is alive.
_HEARTBEAT_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="heartbeat")


def on_worker_thread(fn: Callable[P, R]) -> Callable[P, Coroutine[Any, Any, R]]:
    """`fn` as a coroutine function run on the thread pool, not on the single "sync" thread
    that request handling shares: under load, hundreds of streams' queries and sends queued
    there behind one another for seconds. Stale connections are closed before and after,
    as database_sync_to_async does."""
    return cast(
        Callable[P, Coroutine[Any, Any, R]], database_sync_to_async(fn, thread_sensitive=False)
    )


def on_heartbeat_thread(fn: Callable[P, R]) -> Callable[P, Coroutine[Any, Any, R]]:
    """`fn` as a coroutine function run on the saver's own thread (and database connection)."""
    return cast(
        Callable[P, Coroutine[Any, Any, R]],
        DatabaseSyncToAsync(fn, thread_sensitive=False, executor=_HEARTBEAT_EXECUTOR),
    )
