"""Per-user abuse limits: sends counted in the shared cache (Redis whenever REDIS_URL is
set), replies in flight counted in Postgres.

Counters are fixed windows: cheap, shared by every web process, and forgotten by the cache
on their own when the window ends.
"""

import hashlib
import time

from django.conf import settings
from django.core.cache import BaseCache, caches
from django.core.cache.backends.redis import RedisCache
from django.db import connection
from django.db.models import IntegerField, QuerySet
from django.db.models.expressions import RawSQL

from conversations.models import Conversation, Message, MessageStatus

_shared: tuple[dict, BaseCache] | None = None


def _cache() -> BaseCache:
    """One cache object per process (per CACHES setting). Django's `cache` is one per async
    context, so every socket's first send built a Redis connection pool of its own, with a
    connection kept open as long as the socket."""
    global _shared
    config = settings.CACHES["default"]
    if _shared is None or _shared[0] is not config:
        _shared = (config, caches.create_connection("default"))
    return _shared[1]


def window_count(key: str, *, window: int) -> int:
    """Add one to `key`'s counter for the current window and return the new total."""
    cache = _cache()
    if isinstance(cache, RedisCache):
        return _count_in_redis(cache, key, window)
    # Incrementing first, and creating the counter only when there is none.
    try:
        return cache.incr(key)
    except ValueError:  # no counter yet in this window
        if cache.add(key, 1, timeout=window):
            return 1
    try:
        return cache.incr(key)  # another process created it first
    except ValueError:  # and it expired in between
        cache.set(key, 1, timeout=window)
        return 1


def _count_in_redis(cache: RedisCache, key: str, window: int) -> int:
    """One round trip: Django's incr asks EXISTS first, and a missing counter cost two more.
    The window's expiry is set by the first increment only (EXPIRE NX, Redis 7)."""
    redis_key = cache.make_and_validate_key(key)
    client = cache._cache.get_client(redis_key, write=True)
    with client.pipeline(transaction=True) as pipe:
        pipe.incr(redis_key)
        pipe.expire(redis_key, window, nx=True)
        count, _ = pipe.execute()
    return count


def send_allowed(user_id: int) -> bool:
    """Count one send for this user; False once this minute's allowance is used."""
    minute = int(time.time() // 60)
    sent = window_count(f"limits:send:{user_id}:{minute}", window=60)
    return sent <= settings.SEND_RATE_LIMIT_PER_MINUTE


def with_replies_in_flight(conversations: QuerySet[Conversation]) -> QuerySet[Conversation]:
    """Annotated with `replies_in_flight`: the owner's pending or streaming replies across
    all their conversations, counted in the query that loads the conversation for a send
    (hand-written: the ORM's version cost more CPU to compile than the count to run)."""
    return conversations.annotate(
        replies_in_flight=RawSQL(_IN_FLIGHT_OF_OWNER, _STATUSES, output_field=IntegerField())
    )


_STATUSES = [str(status) for status in MessageStatus.IN_FLIGHT]
_IN_FLIGHT_OF_OWNER = (
    "SELECT COUNT(*) FROM {message} AS m JOIN {conversation} AS c ON c.id = m.conversation_id"
    " WHERE c.owner_id = {conversation}.owner_id AND m.status IN ({statuses})"
).format(
    message=Message._meta.db_table,
    conversation=Conversation._meta.db_table,
    statuses=", ".join(["%s"] * len(MessageStatus.IN_FLIGHT)),
)


# The first key of the advisory lock that serialises one owner's new replies.
REPLIES_LOCK = 7301


def replies_in_flight(conversation: Conversation) -> int:
    """From with_replies_in_flight's annotation when present, else counted now."""
    counted = getattr(conversation, "replies_in_flight", None)
    if counted is not None:
        return counted
    return replies_in_flight_now(conversation.owner_id)


def replies_in_flight_now(owner_id: int) -> int:
    return Message.objects.filter(
        conversation__owner_id=owner_id, status__in=MessageStatus.IN_FLIGHT
    ).count()


def lock_owner_replies(owner_id: int) -> None:
    """Until the transaction ends, the owner's other sends wait here (a transaction-scoped
    advisory lock: no row is written, and nothing else takes this lock)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [REPLIES_LOCK, owner_id])


def _login_key(username: str, address: str) -> str:
    # Hashed: a username may hold characters a cache key may not.
    raw = f"{username.strip().lower()}|{address}".encode()
    return "limits:login:" + hashlib.sha256(raw).hexdigest()


def login_locked(username: str, address: str) -> bool:
    failures = _cache().get(_login_key(username, address), 0)
    return failures >= settings.LOGIN_FAILURE_LIMIT


def login_failed(username: str, address: str) -> None:
    window_count(_login_key(username, address), window=settings.LOGIN_FAILURE_WINDOW)


def login_succeeded(username: str, address: str) -> None:
    _cache().delete(_login_key(username, address))
