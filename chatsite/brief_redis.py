"""A Redis connection for one quick look (a readiness ping, a queue's length), bounded in
time on connect and on every read, and closed after: a probe must never hang on a Redis
that stopped answering, nor leave a pooled connection behind."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def brief_redis(url: str, *, timeout: float) -> Iterator[Any]:
    import redis  # only where a Redis is configured

    client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
    try:
        yield client
    finally:
        client.close()
