"""Where sends, generators and the saver do their database work."""

from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar, cast

from channels.db import database_sync_to_async

P = ParamSpec("P")
R = TypeVar("R")


def on_worker_thread(fn: Callable[P, R]) -> Callable[P, Coroutine[Any, Any, R]]:
    """`fn` as a coroutine function run on the thread pool, not on the single "sync" thread
    that request handling shares: under load, hundreds of streams' queries and sends queued
    there behind one another for seconds. Stale connections are closed before and after,
    as database_sync_to_async does."""
    return cast(
        Callable[P, Coroutine[Any, Any, R]], database_sync_to_async(fn, thread_sensitive=False)
    )
