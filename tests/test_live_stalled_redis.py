"""A stalled Redis delays only what goes through it.

Redis carries events to other processes' tabs; it must never hold up what does not need it:
a reply's heartbeat in Postgres (another process's sweeper reads it), the generator's
reading of the provider, or the text and the end reaching the tabs of the generating
process. Redis is stalled through a loopback proxy (tests/faults.py), for this test only.
"""

import asyncio
import copy
import os
import time
from urllib.parse import urlparse

import pytest
import redis.asyncio as aioredis
from channels.db import database_sync_to_async
from django.utils import timezone

from conversations.live.registry import LiveReply, registry
from conversations.live.saves import saver
from conversations.models import Message, MessageStatus, Role
from tests.factories import MessageFactory
from tests.fake_provider import Reply
from tests.faults import FaultProxy
from tests.waits import wait_until_async
from tests.wsclient import ChatSocket

pytestmark = pytest.mark.django_db(transaction=True)

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14")


@pytest.fixture
def stalling_redis(settings):
    """Presence and the channel layer through a proxy the test can pause."""
    target = urlparse(REDIS_URL)
    with FaultProxy(target.hostname, target.port or 6379) as proxy:
        through_proxy = proxy.url("redis://", target.path)
        layers = copy.deepcopy(settings.CHANNEL_LAYERS)
        for host in layers["default"]["CONFIG"]["hosts"]:
            host["address"] = through_proxy
        settings.REDIS_URL, settings.CHANNEL_LAYERS = through_proxy, layers
        yield proxy
        proxy.resume()


async def _watched_by_another_process(conversation) -> None:
    client = aioredis.Redis.from_url(REDIS_URL)  # straight to Redis, never stalled
    try:
        await client.sadd(f"chatsite:watch:{conversation.uuid}", "another-process")
        await client.expire(f"chatsite:watch:{conversation.uuid}", 60)
    finally:
        await client.aclose()


@database_sync_to_async
def _saved_text(*, page_uuid: str) -> str:
    return Message.objects.get(uuid=page_uuid).content


async def test_the_heartbeat_reaches_postgres_while_redis_is_stalled(conversation, stalling_redis):
    reply = await database_sync_to_async(MessageFactory)(
        conversation=conversation, role=Role.ASSISTANT, status=MessageStatus.STREAMING
    )
    live = LiveReply(
        reply_id=reply.id, uuid=str(reply.uuid), conversation_uuid=str(conversation.uuid)
    )
    live.status, live.saved_at = MessageStatus.STREAMING, time.monotonic() - 60  # a beat is due
    live.add_content("every word so far")
    registry.register(live)
    stalling_redis.pause()
    before, started = timezone.now(), time.monotonic()
    await asyncio.wait_for(saver.save_all(), timeout=2)
    assert time.monotonic() - started < 1, "the save waited for Redis"
    saved = await database_sync_to_async(Message.objects.get)(pk=reply.pk)
    assert saved.content == "every word so far"
    assert saved.heartbeat_at >= before


async def test_the_generating_process_tab_sees_the_whole_reply_end_while_redis_is_stalled(
    conversation, fake_provider, stalling_redis
):
    words = [f"w{i} " for i in range(60)]
    fake_provider.script(Reply(content=words, tokens_per_second=30))
    tab = ChatSocket(conversation, conversation.owner)
    await tab.connect()
    # Another process's tab watches too: every update is also for the channel layer.
    await _watched_by_another_process(conversation)
    await tab.say("Question", "k1")
    await tab.read_until_text(6)
    # A save round has run: the saver knows the other process watches.
    await wait_until_async(lambda: _saved_text(page_uuid=tab.page.last().uuid))
    stalling_redis.pause()
    page = await tab.read_until_reply("complete", timeout=5)
    assert page.last().text.strip() == "".join(words).strip()
    reply = await database_sync_to_async(Message.objects.get)(uuid=page.last().uuid)
    assert (reply.status, reply.content) == (MessageStatus.COMPLETE, "".join(words))
    stalling_redis.resume()
    await tab.close()
