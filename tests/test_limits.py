"""Per-user abuse limits: the send counter in the shared cache, replies in flight."""

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.core.cache import cache
from django.db import connection

from conversations import limits, selectors, services
from conversations.errors import TooManyReplies
from conversations.models import Message, MessageStatus
from tests.factories import ConversationFactory

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14")


@pytest.fixture
def redis_cache(settings, request):
    """The shared Redis cache the site uses in production, under a key prefix of its own."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"test-limits-{os.getpid()}",
        }
    }
    yield cache
    cache.delete_many(["limits:count"])


def test_the_counter_counts_from_one_and_expires_with_its_window(redis_cache):
    assert [limits.window_count("limits:count", window=60) for _ in range(3)] == [1, 2, 3]
    client = redis_cache._cache.get_client()
    ttl = client.ttl(redis_cache.make_and_validate_key("limits:count"))
    assert 0 < ttl <= 60, "a counter without an expiry would limit the user for ever"


def test_counting_from_many_sockets_opens_one_redis_connection(redis_cache, monkeypatch):
    """Each socket runs in an async context of its own; the counter must not build a
    connection pool (and keep a Redis connection) per socket."""
    import contextvars

    from redis import ConnectionPool

    made = []
    original = ConnectionPool.make_connection

    def counting(pool):
        made.append(pool)
        return original(pool)

    monkeypatch.setattr(ConnectionPool, "make_connection", counting)
    counts = [
        contextvars.Context().run(limits.window_count, "limits:count", window=60) for _ in range(5)
    ]
    assert counts == [1, 2, 3, 4, 5]
    assert len(made) <= 1


def test_sends_over_the_minute_allowance_are_refused(redis_cache, settings):
    settings.SEND_RATE_LIMIT_PER_MINUTE = 2
    assert [limits.send_allowed(987_654) for _ in range(3)] == [True, True, False]
    redis_cache.delete(f"limits:send:987654:{int(time.time() // 60)}")


@pytest.mark.django_db
def test_replies_in_flight_are_counted_across_the_owners_conversations(user, chat_model):
    for _ in range(2):
        conversation = ConversationFactory(owner=user, chat_model=chat_model)
        services.message_send(conversation=conversation, content="Hello")
    elsewhere = ConversationFactory(owner=user, chat_model=chat_model)
    loaded = selectors.conversation_for_send(elsewhere, idempotency_key=None)
    assert limits.replies_in_flight(loaded) == limits.replies_in_flight(elsewhere) == 2


@pytest.mark.django_db(transaction=True)
def test_simultaneous_sends_never_overshoot_the_cap(user, chat_model, settings, monkeypatch):
    """Four sends at once with a cap of three: three replies, one refusal. Each send's
    transaction is held open a while, as on a busy database, so that all four would have
    counted before any committed."""
    settings.MAX_REPLIES_IN_FLIGHT = 3
    conversations = [ConversationFactory(owner=user, chat_model=chat_model) for _ in range(4)]
    touch = services.replies.touch_conversation
    monkeypatch.setattr(
        services.replies, "touch_conversation", lambda *a, **k: (time.sleep(0.3), touch(*a, **k))
    )
    start = threading.Barrier(4)

    def send(conversation):
        start.wait()
        try:
            services.message_send(conversation=conversation, content="At once")
            return "sent"
        except TooManyReplies:
            return "refused"
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = sorted(pool.map(send, conversations))
    assert outcomes == ["refused", "sent", "sent", "sent"]
    in_flight = Message.objects.filter(status__in=MessageStatus.IN_FLIGHT).count()
    assert in_flight == 3
