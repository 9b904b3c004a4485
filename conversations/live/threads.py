"""Where sends, generators and the saver do their database work."""

from channels.db import database_sync_to_async


def on_worker_thread(fn):
    """`fn` as a coroutine function run on the thread pool, not on the single "sync" thread
    that request handling shares: under load, hundreds of streams' queries and sends queued
    there behind one another for seconds. Stale connections are closed before and after,
    as database_sync_to_async does."""
    return database_sync_to_async(fn, thread_sensitive=False)
