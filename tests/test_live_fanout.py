"""The fan-out and the saver: fragments coalesced per reply, one save for every live reply,
and updates reaching tabs in other server processes, through the channel layer only then."""

import asyncio
import os
import time

import pytest
import redis.asyncio as redis
from channels.db import database_sync_to_async
from django.db import connection

from conversations import services
from conversations.live.fanout import FRAGMENT_INTERVAL_CEILING, fanout
from conversations.live.presence import presence
from conversations.live.registry import LiveReply, registry
from conversations.live.remote_sends import remote_sends
from conversations.live.saves import saver
from conversations.live.supervisor import supervisor
from conversations.models import Message, MessageStatus, Role
from tests.factories import ChatModelFactory, ConversationFactory, MessageFactory, UserFactory
from tests.fake_provider import Reply
from tests.live_server import DaphneServer
from tests.page_model import PageModel
from tests.waits import wait_until_async
from tests.wsclient import LiveSocket

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14")


class Recorder:
    """A subscriber that keeps what it was given, and when."""

    channel_name = "recorder"

    def __init__(self) -> None:
        self.updates: list[tuple[float, str]] = []
        self.appended: list[list[str]] = []

    async def reply_changed(self, state) -> None:
        self.updates.append((time.monotonic(), state.content))

    async def messages_appended(self, html: str, uuids: list[str]) -> None:
        self.appended.append(uuids)


def _live(number: int, conversation_uuid: str = "c") -> LiveReply:
    return LiveReply(reply_id=number, uuid=f"r{number}", conversation_uuid=conversation_uuid)


async def test_a_growing_reply_gets_at_most_one_fragment_per_interval(settings):
    settings.STREAM_FRAGMENT_INTERVAL = 0.05
    tab, live = Recorder(), _live(1)
    registry.register(live)
    await fanout.subscribe("c", tab)
    started = time.monotonic()
    for i in range(100):  # 200 tokens a second for half a second
        live.add_content(f"{i} ")
        await fanout.reply_grew(live)
        await asyncio.sleep(0.005)
    everything = "".join(f"{i} " for i in range(100))
    # The ticker flushes the text still waiting after the last token.
    await wait_until_async(
        lambda: tab.updates and tab.updates[-1][1] == everything,
        timeout=2,
        message="nothing is left behind",
    )
    elapsed = time.monotonic() - started
    assert len(tab.updates) <= elapsed / 0.05 + 2
    assert tab.updates[-1][1] == everything, "nothing is left behind"
    gaps = [b[0] - a[0] for a, b in zip(tab.updates, tab.updates[1:], strict=False)]
    assert min(gaps) > 0.03


class SlowTab(Recorder):
    """A tab whose every update costs 30 ms of the event loop, as hundreds of sockets do."""

    async def reply_changed(self, state) -> None:
        await super().reply_changed(state)
        time.sleep(0.03)


async def test_slow_publishing_does_not_stretch_the_interval_between_fragments(settings):
    settings.STREAM_FRAGMENT_INTERVAL = 0.05
    tab, live = SlowTab(), _live(1)
    registry.register(live)
    await fanout.subscribe("c", tab)
    for i in range(200):  # 200 tokens a second for a second
        live.add_content(f"{i} ")
        await fanout.reply_grew(live)
        await asyncio.sleep(0.005)
    gaps = [b[0] - a[0] for a, b in zip(tab.updates[1:], tab.updates[2:], strict=False)]
    # Sleeping a whole interval after each 30 ms publish would space them 80 ms apart.
    assert sum(gaps) / len(gaps) < 0.065
    assert min(gaps) > 0.03


async def test_the_first_text_of_a_quiet_reply_goes_out_at_once(settings):
    settings.STREAM_FRAGMENT_INTERVAL = 0.05
    tab, live = Recorder(), _live(1)
    registry.register(live)
    await fanout.subscribe("c", tab)
    live.add_content("Hello")
    await fanout.reply_grew(live)
    assert tab.updates == [(pytest.approx(time.monotonic(), abs=0.01), "Hello")]


def test_fragments_grow_apart_as_more_replies_stream_in_the_process(settings):
    settings.STREAM_FRAGMENT_INTERVAL = 0.05
    for number in range(10):
        registry.register(_live(number, f"c{number}"))
    assert fanout.fragment_interval() == 0.05
    for number in range(10, 400):
        registry.register(_live(number, f"c{number}"))
    assert fanout.fragment_interval() == FRAGMENT_INTERVAL_CEILING


async def _remote_sends_done() -> None:
    """Events for other processes leave from a task of their own, which ends once idle."""
    task = supervisor.running("remote-sends")
    if task is not None:
        await task


@pytest.mark.django_db(transaction=True)
async def test_new_messages_use_the_channel_layer_only_when_another_process_watches(
    monkeypatch,
):
    sent = []

    async def record(conversation_uuid, event):
        sent.append(event["type"])

    monkeypatch.setattr(presence(), "send", record)
    await fanout.subscribe("conv-x", Recorder())
    await fanout.publish_messages("conv-x", "<div></div>", ["m1"])
    await _remote_sends_done()
    assert sent == [], "only this process watches: its sockets were fed directly"
    client = redis.Redis.from_url(REDIS_URL)
    try:
        await client.sadd("chatsite:watch:conv-x", "another-process")
        await fanout.publish_messages("conv-x", "<div></div>", ["m2"])
        await _remote_sends_done()
        assert sent == ["messages.added"]
    finally:
        await client.delete("chatsite:watch:conv-x")
        await client.aclose()


@pytest.mark.django_db(transaction=True)
async def test_updates_waiting_for_a_stalled_redis_collapse_into_the_newest_in_order(
    monkeypatch,
):
    sent, redis_answers = [], asyncio.Event()

    async def stalled_send(conversation_uuid, event):
        await redis_answers.wait()
        sent.append((event["type"], event.get("content"), event.get("uuids")))

    async def everyone_watches(conversation_uuids):
        return set(conversation_uuids)

    monkeypatch.setattr(presence(), "send", stalled_send)
    monkeypatch.setattr(presence(), "watched_elsewhere", everyone_watches)
    earlier, live = _live(1, "conv-s"), _live(2, "conv-s")
    live.remote_watchers = earlier.remote_watchers = True
    earlier.add_content("before")
    await fanout.publish_reply(earlier)  # being sent when Redis stalls
    await asyncio.sleep(0)
    await fanout.publish_messages("conv-s", "<div></div>", ["question", live.uuid])
    for word in ("one ", "two ", "three"):
        live.add_content(word)
        await fanout.publish_reply(live)  # returns at once, Redis or not
    assert remote_sends.waiting() == 2, "the reply's three updates wait as one"
    redis_answers.set()
    await _remote_sends_done()
    assert sent == [
        ("reply.update", "before", None),
        ("messages.added", None, ["question", live.uuid]),
        ("reply.update", "one two three", None),
    ]


@pytest.mark.django_db
def test_one_statement_saves_the_text_of_every_streaming_reply(
    conversation, django_assert_num_queries
):
    first, second, ended = (  # at most one reply in flight per conversation
        MessageFactory(
            conversation=ConversationFactory(owner=conversation.owner),
            role=Role.ASSISTANT,
            status=status,
        )
        for status in (MessageStatus.STREAMING, MessageStatus.STREAMING, MessageStatus.COMPLETE)
    )
    partials = [
        services.Partial(first.id, "one", ""),
        services.Partial(second.id, "two", "thinking"),
        services.Partial(ended.id, "late text", ""),
    ]
    with django_assert_num_queries(1):
        assert services.replies_save_partial(partials=partials) == 2
    first.refresh_from_db(), second.refresh_from_db(), ended.refresh_from_db()
    assert (first.content, second.content, second.reasoning) == ("one", "two", "thinking")
    assert first.heartbeat_at is not None and ended.content != "late text"


def test_saved_partials_keep_every_character_of_their_text(conversation):
    # The texts travel as arrays: quotes, braces, commas and backslashes are array syntax.
    texts = ['say "hi", {then} \\ leave', "NULL", "", "多字节 😀 , }{", "a\nb\tc'd"]
    replies = [
        MessageFactory(
            conversation=ConversationFactory(owner=conversation.owner),
            role=Role.ASSISTANT,
            status=MessageStatus.STREAMING,
        )
        for _ in texts
    ]
    partials = [
        services.Partial(reply.id, text, text[::-1])
        for reply, text in zip(replies, texts, strict=True)
    ]
    assert services.replies_save_partial(partials=partials) == len(texts)
    for reply, text in zip(replies, texts, strict=True):
        reply.refresh_from_db()
        assert (reply.content, reply.reasoning) == (text, text[::-1])


@pytest.mark.django_db(transaction=True)
async def test_the_saver_writes_every_live_reply_in_one_call(conversation, monkeypatch):
    def replies():
        return [
            MessageFactory(
                conversation=ConversationFactory(owner=conversation.owner),
                role=Role.ASSISTANT,
                status=MessageStatus.STREAMING,
            )
            for _ in range(3)
        ]

    calls = []
    original = services.replies_save_partial
    monkeypatch.setattr(
        services, "replies_save_partial", lambda **kw: calls.append(kw) or original(**kw)
    )
    for reply in await database_sync_to_async(replies)():
        live = LiveReply(reply_id=reply.id, uuid=str(reply.uuid), conversation_uuid="c")
        live.status, live.saved_at = (
            MessageStatus.STREAMING,
            time.monotonic() - 1,
        )  # claimed 1 s ago
        live.add_content(f"text of {reply.id}")
        registry.register(live)
    await saver.save_all()
    await saver.save_all()  # nothing changed, no heartbeat due: nothing to write
    assert len(calls) == 1 and len(calls[0]["partials"]) == 3
    saved = await database_sync_to_async(list)(
        Message.objects.filter(status=MessageStatus.STREAMING).values_list("id", "content")
    )
    assert sorted(saved) == sorted((pk, f"text of {pk}") for pk, _ in saved)


# --- Across server processes -----------------------------------------------------------


@pytest.fixture
def two_servers(fake_provider_server):
    servers = [
        DaphneServer(
            settings_dict=connection.settings_dict,
            provider_url=fake_provider_server.base_url,
            redis_url=REDIS_URL,
        ).start()
        for _ in range(2)
    ]
    yield servers
    for server in servers:
        server.stop()


def _ended(page: PageModel) -> bool:
    return page.last() is not None and page.last().status == "complete"


async def _both_processes_watch(client, conversation) -> bool:
    return await client.scard(f"chatsite:watch:{conversation.uuid}") == 2


@pytest.mark.django_db(transaction=True)
def test_a_tab_on_another_process_gets_the_message_the_text_and_the_end(two_servers, fake_provider):
    conversation = ConversationFactory(owner=UserFactory(), chat_model=ChatModelFactory())
    words = [f"w{i} " for i in range(60)]
    fake_provider.script(Reply(content=words, tokens_per_second=40))
    sender, watcher = (LiveSocket(server, conversation) for server in two_servers)
    late = LiveSocket(two_servers[1], conversation)  # joins mid-stream, on the other process

    async def scenario():
        await sender.open()
        await watcher.open()
        # An empty conversation's sync sends no frame: what says both sockets are subscribed
        # is their processes in the conversation's watcher set, where the sender's process
        # looks before sending the new message to other processes.
        client = redis.Redis.from_url(REDIS_URL)
        try:
            await wait_until_async(
                lambda: _both_processes_watch(client, conversation),
                message="the two processes never both watched the conversation",
            )
        finally:
            await client.aclose()
        await sender.say("Across", "k")
        await watcher.read_until(lambda page: len(page.last().text if page.last() else "") > 20)
        await late.open()
        for tab in (sender, watcher, late):
            await tab.read_until(_ended)
            await tab.close()

    asyncio.run(scenario())
    for page in (sender.page, watcher.page, late.page):
        assert page.last("user").text == "Across"
        assert page.last().text.strip() == "".join(words).strip()


async def test_two_sockets_leaving_a_conversation_at_once_both_leave_cleanly():
    first, second = Recorder(), Recorder()
    await fanout.subscribe("c-leave", first)
    await fanout.subscribe("c-leave", second)
    await asyncio.gather(
        fanout.unsubscribe("c-leave", first), fanout.unsubscribe("c-leave", second)
    )
    assert fanout.subscriber_count() == 0
