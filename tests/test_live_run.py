"""How a generation ends, for every way a provider can fail, and how often it writes."""

import asyncio
import threading
import time

import pytest
from channels.db import database_sync_to_async

from conversations import chat_actions, services
from conversations.live import process, run
from conversations.live.fanout import fanout
from conversations.live.registry import registry
from conversations.models import Message, MessageStatus, Provider, Role, UsageRecord
from tests.fake_provider import Reply
from tests.waits import wait_until_async
from tests.wsclient import ChatSocket, tab_streaming

pytestmark = pytest.mark.django_db(transaction=True)


async def _chat(conversation, *replies: Reply, fake_provider, expect: str, timeout=15):
    fake_provider.script(*replies)
    tab = ChatSocket(conversation, conversation.owner)
    await tab.connect()
    await tab.say("Question", "k1")
    page = await tab.read_until_reply(expect, timeout=timeout)
    await tab.close()
    reply = await database_sync_to_async(
        lambda: Message.objects.filter(conversation=conversation, role=Role.ASSISTANT).latest("id")
    )()
    return page, reply


async def test_invalid_key_fails_with_a_plain_message_and_keeps_the_question(
    conversation, fake_provider, settings
):
    settings.PROVIDER_CREDENTIALS = {
        **settings.PROVIDER_CREDENTIALS,
        "local": {"api_key": "bad-key", "base_url": fake_provider.base_url},
    }
    page, reply = await _chat(conversation, fake_provider=fake_provider, expect="failed")
    assert reply.error_code == "auth_failed"
    assert "API key" in reply.error_text
    assert "Retry" in page.last().html and "API key" in page.last().html
    assert page.last("user").text == "Question"
    assert len(fake_provider.chat_requests) == 1, "a 401 is not retried"


async def test_rate_limit_is_retried_honouring_retry_after_then_succeeds(
    conversation, fake_provider
):
    limited = Reply(status=429, headers={"Retry-After": "0"})
    page, reply = await _chat(
        conversation,
        limited,
        Reply(content="Finally."),
        fake_provider=fake_provider,
        expect="complete",
    )
    assert reply.content == "Finally."
    assert len(fake_provider.chat_requests) == 2


async def test_rate_limit_after_all_retries_fails_clearly(conversation, fake_provider):
    limited = Reply(status=429, headers={"Retry-After": "0"})
    _, reply = await _chat(
        conversation, limited, limited, limited, fake_provider=fake_provider, expect="failed"
    )
    assert reply.error_code == "rate_limited"
    assert len(fake_provider.chat_requests) == 3  # first try + PROVIDER_MAX_RETRIES


# Each provider's words for an account without credit (their documented error bodies).
OUT_OF_CREDIT = {
    "openai": (
        429,
        "insufficient_quota",
        "You exceeded your current quota, please check your plan.",
    ),
    "deepseek": (402, "invalid_request_error", "Insufficient Balance"),
    "dashscope": (
        400,
        "Arrearage",
        "Access denied, please make sure your account is in good standing.",
    ),
    "zhipu": (429, "1113", "余额不足或无可用资源包,请充值。"),
}


@pytest.mark.parametrize("provider", sorted(OUT_OF_CREDIT))
async def test_an_account_out_of_credit_is_said_so_and_not_retried(
    conversation, fake_provider, provider
):
    status, code, message = OUT_OF_CREDIT[provider]
    spent = Reply(
        status=status, error_code=code, error_message=message, headers={"Retry-After": "0"}
    )
    page, reply = await _chat(conversation, spent, fake_provider=fake_provider, expect="failed")
    assert reply.error_code == "out_of_credit"
    assert "out of credit" in reply.error_text and "administrator" in page.last().html
    assert len(fake_provider.chat_requests) == 1, "credit does not come back with a retry"


async def test_server_error_after_retries_fails_clearly(conversation, fake_provider):
    broken = Reply(status=503, headers={"Retry-After": "0"})
    _, reply = await _chat(
        conversation, broken, broken, broken, fake_provider=fake_provider, expect="failed"
    )
    assert reply.error_code == "provider_unavailable"
    assert "server error" in reply.error_text


async def test_connection_dropped_mid_stream_keeps_the_partial_as_interrupted(
    conversation, fake_provider
):
    tokens = [f"part{i} " for i in range(10)]
    _, reply = await _chat(
        conversation,
        Reply(content=tokens, disconnect_after=5),
        fake_provider=fake_provider,
        expect="interrupted",
    )
    assert reply.content.startswith("part0 ")
    assert reply.error_code == "connection_lost"
    assert len(fake_provider.chat_requests) == 1, "no silent second call after a stream began"


async def test_stalled_stream_is_cut_after_the_read_timeout(conversation, fake_provider, settings):
    settings.PROVIDER_READ_TIMEOUT = 0.5
    tokens = [f"s{i} " for i in range(10)]
    _, reply = await _chat(
        conversation,
        Reply(content=tokens, stall_after=3, stall_seconds=10),
        fake_provider=fake_provider,
        expect="interrupted",
    )
    assert reply.error_code == "timeout"
    assert reply.content  # what arrived before the stall is kept
    fake_provider.wait_for_disconnect(timeout=5)


async def test_stream_without_finish_reason_is_interrupted_not_complete(
    conversation, fake_provider
):
    _, reply = await _chat(
        conversation,
        Reply(content="Half an ans", finish_reason=None, send_done=False),
        fake_provider=fake_provider,
        expect="interrupted",
    )
    assert reply.content == "Half an ans"


async def test_length_finish_is_truncated_and_says_cut_off(conversation, fake_provider):
    page, reply = await _chat(
        conversation,
        Reply(content="A long answer that", finish_reason="length"),
        fake_provider=fake_provider,
        expect="truncated",
    )
    assert reply.finish_reason == "length"
    assert "Cut off" in page.last().html


async def test_a_reply_past_the_server_limit_is_cut_closed_upstream_and_kept_truncated(
    conversation, fake_provider, settings
):
    settings.REPLY_MAX_CHARS = 1000
    tokens = [f"word{i:04d} " for i in range(400)]  # 4,000 characters
    page, reply = await _chat(
        conversation,
        Reply(content=tokens, tokens_per_second=1000),  # still streaming when cut
        fake_provider=fake_provider,
        expect="truncated",
    )
    assert reply.content == "".join(tokens)[:1000]
    assert reply.error_code == "reply_too_long"
    assert "1,000 characters" in page.last().html
    stream = fake_provider.wait_for_disconnect(timeout=5)
    assert stream.client_disconnected and not stream.finished


async def test_context_too_long_is_explained(conversation, fake_provider):
    too_long = Reply(
        status=400,
        error_code="context_length_exceeded",
        error_message="This model's maximum context length is 8192 tokens.",
    )
    _, reply = await _chat(conversation, too_long, fake_provider=fake_provider, expect="failed")
    assert reply.error_code == "context_too_long"
    assert "context window" in reply.error_text


async def test_empty_reply_fails_instead_of_showing_nothing(conversation, fake_provider):
    _, reply = await _chat(
        conversation, Reply(content=""), fake_provider=fake_provider, expect="failed"
    )
    assert reply.error_code == "empty_reply"


async def test_server_rejecting_stream_options_is_learned_and_usage_estimated(
    conversation, fake_provider
):
    picky = Reply(content="Fine.", reject_stream_options=True)
    _, reply = await _chat(
        conversation, picky, picky, fake_provider=fake_provider, expect="complete"
    )
    bodies = [r.json for r in fake_provider.chat_requests]
    assert "stream_options" in bodies[0] and "stream_options" not in bodies[1]
    provider = await database_sync_to_async(Provider.objects.get)(slug="local")
    assert provider.stream_usage_supported is False
    # The rejected first call has a zero-token record of its own (see test_ledger.py).
    record = await database_sync_to_async(UsageRecord.objects.get)(message=reply, retried=False)
    assert record.estimated and record.completion_tokens > 0


async def test_usage_reported_by_the_provider_is_stored_on_reply_and_ledger(
    conversation, fake_provider
):
    usage = {
        "prompt_tokens": 120,
        "completion_tokens": 30,
        "total_tokens": 150,
        "prompt_tokens_details": {"cached_tokens": 100},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    _, reply = await _chat(
        conversation,
        Reply(content="Ok.", usage=usage),
        fake_provider=fake_provider,
        expect="complete",
    )
    assert (reply.prompt_tokens, reply.completion_tokens, reply.cached_tokens) == (120, 30, 100)
    record = await database_sync_to_async(UsageRecord.objects.get)(message=reply)
    assert record.reported and record.prompt_tokens == 120 and record.cached_tokens == 100


async def test_fragments_and_database_writes_are_coalesced(
    conversation, fake_provider, settings, monkeypatch
):
    settings.STREAM_FRAGMENT_INTERVAL = 0.05
    settings.STREAM_SAVE_INTERVAL = 0.5
    saves = []
    original = services.replies_save_partial

    def counting_save(**kwargs):
        saves.append(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(services, "replies_save_partial", counting_save)
    tokens = [f"{i} " for i in range(300)]
    fake_provider.script(Reply(content=tokens, tokens_per_second=200))  # ~1.5 s
    tab = ChatSocket(conversation, conversation.owner)
    await tab.connect()
    await tab.say("Fast", "k1")
    page = await tab.read_until_reply("complete", timeout=20)
    stream = fake_provider.streams[-1]
    duration = stream.ended_at - stream.emit_times[0]
    deltas = [f for f in page.frames if '-text">' in f and 'hx-swap-oob="beforeend:#m-' in f]
    assert len(deltas) <= duration / 0.05 + 3, f"{len(deltas)} fragments in {duration:.2f} s"
    assert len(deltas) < len(tokens) / 3
    assert 1 <= len(saves) <= duration / 0.5 + 2
    assert page.last().text.strip() == "".join(tokens).strip()
    await tab.close()


def _slow_final_save(monkeypatch, *, seconds: float) -> threading.Event:
    """A reply's final save that takes `seconds` (a loaded worker pool); the event is set
    when it starts."""
    started = threading.Event()
    save = services.reply_finish

    def finish_slowly(**kwargs):
        started.set()
        time.sleep(seconds)
        return save(**kwargs)

    monkeypatch.setattr(services, "reply_finish", finish_slowly)
    return started


async def test_the_last_words_reach_the_page_before_the_final_save(
    conversation, fake_provider, settings, monkeypatch
):
    # Text after the first fragment waits for a tick two seconds away; the final save
    # takes as long (a loaded worker pool). The last words must not wait for either.
    settings.STREAM_FRAGMENT_INTERVAL = 2.0
    _slow_final_save(monkeypatch, seconds=2.5)
    fake_provider.script(Reply(content=["First ", "second ", "last."], tokens_per_second=20))
    tab = ChatSocket(conversation, conversation.owner)
    await tab.connect()
    await tab.say("Three words", "k1")
    started = time.monotonic()
    page = await tab.read_until(lambda p: "last." in (p.last().text if p.last() else ""), 1.5)
    assert page.last().status == "streaming", "the text came before the final state"
    assert time.monotonic() - started < 1.5
    page = await tab.read_until_reply("complete", timeout=10)
    assert page.last().text.strip() == "First second last."
    await tab.close()


async def test_sweep_ends_replies_nobody_generates_and_tells_the_page(conversation, settings):
    from datetime import timedelta

    from django.utils import timezone

    from tests.factories import MessageFactory

    old = timezone.now() - timedelta(seconds=settings.STREAM_STALE_AFTER * 3)
    reply = await database_sync_to_async(MessageFactory)(
        conversation=conversation,
        role=Role.ASSISTANT,
        status=MessageStatus.STREAMING,
        content="half",
    )
    await database_sync_to_async(Message.objects.filter(pk=reply.pk).update)(
        heartbeat_at=old, created_at=old
    )
    # The first socket starts this process's sweeper, which finds the dead reply at once.
    tab = ChatSocket(conversation, conversation.owner)
    await tab.connect(last=str(reply.uuid))
    page = await tab.read_until_reply("interrupted")
    assert page.last().text.strip() == "half"
    assert "interrupted" in page.last().html and "Retry" in page.last().html
    assert await process.sweep() == 0, "a second sweep finds nothing left"
    await tab.close()


async def test_a_reply_swept_by_another_process_mid_stream_keeps_every_character(
    conversation, fake_provider
):
    words = [f"w{i} " for i in range(60)]
    fake_provider.script(Reply(content=words, tokens_per_second=40))
    tab = await tab_streaming(conversation, "Question")
    reply_uuid = tab.page.last().uuid
    # Another process's sweeper, which saw no heartbeat in time (this one stalled), ends the
    # reply and tells the tabs.
    swept = await database_sync_to_async(services.reply_interrupt_stale)(everything=True)
    assert [str(reply.uuid) for reply in swept] == [reply_uuid]
    await fanout.publish_final(swept[0])
    await tab.read_until_reply("interrupted")

    @database_sync_to_async
    def saved_past_the_sweep():
        reply = Message.objects.get(uuid=reply_uuid)
        return reply.status == MessageStatus.INTERRUPTED and len(reply.content) > len(
            swept[0].content
        )

    # The generator keeps saving what it has, and its final state is the one that stays.
    await wait_until_async(saved_past_the_sweep, message="no partial saved after the sweep")
    page = await tab.read_until_reply("complete", timeout=10)
    assert page.last().text.strip() == "".join(words).strip()
    reply = await database_sync_to_async(Message.objects.get)(uuid=reply_uuid)
    assert (reply.status, reply.error_code, reply.content) == ("complete", "", "".join(words))
    assert await database_sync_to_async(UsageRecord.objects.filter(message=reply).count)() == 1
    await tab.close()


async def test_start_up_sweep_spares_replies_this_process_is_generating(
    conversation, fake_provider, settings
):
    settings.REDIS_URL = ""  # alone: the first sweep ends everything not live here
    fake_provider.script(Reply(content=[f"x{i} " for i in range(20)], tokens_per_second=50))
    sent = await chat_actions.send_message(
        conversation=conversation, content="Hi", idempotency_key="k"
    )
    await process.sweep(everything=True)

    async def ended():
        reply = await database_sync_to_async(Message.objects.get)(pk=sent.reply.pk)
        return reply if reply.status not in MessageStatus.IN_FLIGHT else None

    reply = await wait_until_async(ended, message="the reply never ended")
    assert reply.status == MessageStatus.COMPLETE


async def test_a_reply_whose_conversation_is_deleted_mid_stream_ends_quietly(
    conversation, fake_provider, caplog
):
    from conversations.models import Conversation

    fake_provider.script(Reply(content=[f"w{i} " for i in range(60)], tokens_per_second=40))
    tab = await tab_streaming(conversation, "Question")
    live = registry.live_reply(tab.page.last().uuid)
    # Deleted under the generator (a delete that did not wait for the stop).
    await database_sync_to_async(Conversation.objects.filter(pk=conversation.pk).delete)()
    await asyncio.wait_for(live.task, timeout=15)
    await tab.close()
    assert "failed unexpectedly" not in caplog.text
    assert not await database_sync_to_async(Message.objects.filter(pk=live.reply_id).exists)()


async def test_a_send_and_the_claim_of_its_reply_share_one_worker_thread_trip(
    conversation, fake_provider, monkeypatch
):
    """Each trip to a worker thread costs the event loop a hand-over of the GIL: the send
    claims its reply in its own trip, so the generator streams without a trip to claim."""
    # Which worker-thread trip of the generator each claim and final save ran in ("send":
    # none of the generator's, so the sender's own trip).
    claims, finishes, trips, inside = [], [], [], threading.local()
    original_start, original_finish = services.reply_start, services.reply_finish
    original_trip = run.on_worker_thread

    def recording_start(**kwargs):
        claims.append(getattr(inside, "trip", "send"))
        return original_start(**kwargs)

    def recording_finish(**kwargs):
        finishes.append(getattr(inside, "trip", "send"))
        return original_finish(**kwargs)

    def recording_trip(fn):
        trip = f"trip {len(trips)}"
        trips.append(trip)

        def traced(*args, **kwargs):
            inside.trip = trip
            try:
                return fn(*args, **kwargs)
            finally:
                del inside.trip

        return original_trip(traced)

    monkeypatch.setattr(services, "reply_start", recording_start)
    monkeypatch.setattr(services, "reply_finish", recording_finish)
    monkeypatch.setattr(run, "on_worker_thread", recording_trip)
    page, reply = await _chat(
        conversation, Reply(content="Claimed."), fake_provider=fake_provider, expect="complete"
    )
    assert reply.content == "Claimed."
    assert claims == ["send"], "claimed once, in the send's own trip"
    assert len(finishes) == 1 and finishes[0] in trips, "the final save is the generator's"


async def test_a_stop_during_the_final_save_keeps_the_finished_reply(
    conversation, fake_provider, monkeypatch
):
    # A stop that lands as a reply ends (the Stop button a moment late, or a second click)
    # finds it saving its final state: it must neither lose that save nor the page's update.
    saving = _slow_final_save(monkeypatch, seconds=1.0)
    fake_provider.script(Reply(content=["All ", "of ", "it."], tokens_per_second=50))
    tab = ChatSocket(conversation, conversation.owner)
    await tab.connect()
    await tab.say("Three words", "k1")
    await asyncio.get_running_loop().run_in_executor(None, saving.wait, 5)
    await tab.send(action="stop")
    page = await tab.read_until_reply("complete", timeout=5)
    assert page.last().text.strip() == "All of it."
    reply = await database_sync_to_async(Message.objects.get)(uuid=page.last().uuid)
    assert (reply.status, reply.content) == (MessageStatus.COMPLETE, "All of it.")
    await tab.close()
