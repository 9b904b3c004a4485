"""Summaries keep up: every turn after the summary boundary is sent, once, at a human pace;
one pending summary job per conversation; one chain of summaries however many workers."""

import asyncio
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone

from conversations import services
from conversations.models import Conversation, ConversationSummary, Message, Role
from conversations.services.summaries import SUMMARY_JOB_STALE
from conversations.tasks import index_messages, summarise_conversation
from tests.factories import ChatModelFactory, ConversationFactory, thread
from tests.fake_provider import Reply
from tests.test_summaries import (
    FILLER,
    is_summary_request,
    numbered_replies,
    small_window_model,
)
from tests.wsclient import ChatSocket

pytestmark = pytest.mark.django_db(transaction=True)


def slow_summaries(seconds: float):
    """Numbered chat replies; each summary call takes `seconds`."""

    def respond(body: dict) -> Reply:
        reply = numbered_replies(body)
        if is_summary_request(body):
            reply.first_token_delay = seconds
        return reply

    return respond


async def chat(conversation, user, turns: int, *, pause: float) -> None:
    tab = ChatSocket(conversation, user)
    await tab.connect()
    for number in range(turns):
        await tab.say(f"u{number} {FILLER}", f"k{number}")
        await tab.read_until(
            lambda page, n=number: (
                len(page.order) == 2 * (n + 1) and page.last().status == "complete"
            ),
            timeout=15,
        )
        await asyncio.sleep(pause)
    await tab.close()


def replies_with_drops(conversation) -> list[int]:
    replies = Message.objects.filter(conversation=conversation, role=Role.ASSISTANT)
    return [r.context.get("dropped_turns") or 0 for r in replies.order_by("id")]


def assert_one_chain(conversation) -> list[ConversationSummary]:
    """Each summary continues the one before it: never two chains side by side."""
    summaries = list(
        ConversationSummary.objects.filter(conversation=conversation).order_by("covers_through_id")
    )
    assert summaries, "the chat was long enough to be summarised"
    assert summaries[0].previous_id is None
    for earlier, later in zip(summaries, summaries[1:], strict=False):
        assert later.previous_id == earlier.pk, "a summary started its own chain"
    return summaries


# The shipped trigger and summary size (not the suite's small ones): with a summary and
# recall reserved, the turns have far less room than the whole budget.
SHIPPED_SUMMARY_SETTINGS = {"SUMMARY_TRIGGER_RATIO": "0.7", "SUMMARY_MAX_TOKENS": "1024"}


async def test_turns_at_a_human_pace_are_never_dropped_unsummarised(
    user, fake_provider, settings, celery_worker_factory
):
    """One worker, a summary call of half a second, a short pause between turns, a 3,000
    token window: the summaries are always ready before the turns they would condense run
    out of room. (Judged against the whole budget, the first summary came after the turns
    had already run out of room, at the tenth turn.)"""
    settings.SUMMARY_TRIGGER_RATIO, settings.SUMMARY_MAX_TOKENS = 0.7, 1024
    celery_worker_factory(**SHIPPED_SUMMARY_SETTINGS)
    chat_model = await database_sync_to_async(ChatModelFactory)(
        name="window-3k", context_window=3000, max_output=800
    )
    conversation = await database_sync_to_async(ConversationFactory)(
        owner=user, chat_model=chat_model
    )
    fake_provider.responder = slow_summaries(0.5)
    await chat(conversation, user, 34, pause=0.4)

    drops = await database_sync_to_async(replies_with_drops)(conversation)
    assert len(drops) == 34
    assert not any(drops), f"turns dropped before a summary covered them: {drops}"
    await database_sync_to_async(assert_one_chain)(conversation)


async def test_back_to_back_turns_coalesce_into_one_pending_summary_job(
    user, fake_provider, summary_settings, celery_worker_factory
):
    """Turns faster than a summary call: the queued job summarises the newest thread when it
    runs, so the calls follow the summaries written, not the replies that were due."""
    worker = celery_worker_factory()
    conversation = await database_sync_to_async(ConversationFactory)(
        owner=user, chat_model=await database_sync_to_async(small_window_model)()
    )
    fake_provider.responder = slow_summaries(1.5)
    await chat(conversation, user, 30, pause=0)
    # Let the last queued job end before counting.
    await asyncio.sleep(3.5)

    summaries = await database_sync_to_async(assert_one_chain)(conversation)
    calls = [r for r in fake_provider.chat_requests if is_summary_request(r.json)]
    assert len(calls) == len(summaries), "every summary call wrote a summary"
    runs = await asyncio.to_thread(worker.tasks_done, "summarise_conversation")
    assert len(runs) <= 2 * len(summaries) + 1, f"{len(runs)} jobs for {len(summaries)} summaries"


def test_two_workers_never_build_two_chains(
    user, fake_provider, summary_settings, celery_worker_factory
):
    """Jobs for one conversation on two workers at once, each for a newer leaf (as replies
    queued them before coalescing): each waits for the one before and continues its chain,
    and no range is paid for twice."""
    workers = [celery_worker_factory(), celery_worker_factory()]
    conversation = ConversationFactory(owner=user, chat_model=small_window_model())
    texts = [f"{'u' if i % 2 == 0 else 'a'}{i} {FILLER}" for i in range(120)]
    messages = thread(conversation, *texts)
    fake_provider.responder = slow_summaries(1.0)
    for message in messages[79::20]:
        summarise_conversation.delay(conversation.pk, message.pk)

    # The workers share one log: the first one's lines count both.
    workers[0].wait_for_tasks_done(3, name_contains="summarise_conversation", timeout=40)
    summaries = assert_one_chain(conversation)
    calls = [r for r in fake_provider.chat_requests if is_summary_request(r.json)]
    assert len(calls) == len(summaries) >= 2


@pytest.mark.django_db
def test_a_due_reply_queues_no_second_job_while_one_waits(
    user, summary_settings, django_capture_on_commit_callbacks
):
    conversation = ConversationFactory(owner=user, chat_model=small_window_model())
    with django_capture_on_commit_callbacks(execute=False) as queued:
        assert services.summary_schedule(conversation_id=conversation.pk)
        assert not services.summary_schedule(conversation_id=conversation.pk)
    assert len(queued) == 1


@pytest.mark.django_db
def test_a_job_lost_before_it_started_is_queued_again_later(
    user, summary_settings, django_capture_on_commit_callbacks
):
    conversation = ConversationFactory(owner=user, chat_model=small_window_model())
    lost_at = timezone.now() - SUMMARY_JOB_STALE - timedelta(seconds=1)
    Conversation.objects.filter(pk=conversation.pk).update(summary_job_queued_at=lost_at)
    with django_capture_on_commit_callbacks(execute=False) as queued:
        assert services.summary_schedule(conversation_id=conversation.pk)
    assert len(queued) == 1


def test_a_summary_does_not_wait_behind_recalls_indexing(
    user, fake_provider, summary_settings, recall_on, celery_worker_factory
):
    """A busy chat can leave recall's indexing behind; summaries have a queue of their own,
    which the worker takes from in turn, so the summary runs before that backlog ends."""
    worker = celery_worker_factory(RECALL_ENABLED="true")
    conversation = ConversationFactory(owner=user, chat_model=small_window_model())
    texts = [f"{'u' if i % 2 == 0 else 'a'}{i} {FILLER * 12}" for i in range(80)]
    messages = thread(conversation, *texts)
    fake_provider.responder = slow_summaries(0.1)
    for message in messages[:40]:  # a backlog: one indexing job per message
        index_messages.delay([message.pk])
    summarise_conversation.delay(conversation.pk, messages[-1].pk)
    worker.wait_for_tasks_done(1, name_contains="summarise_conversation", timeout=60)
    indexed = worker.tasks_done("index_messages")
    # FIFO, it would run after 38 or more (two worker threads); in turn, after a few.
    assert len(indexed) <= 10, f"the summary waited for {len(indexed)} indexing jobs"
    assert ConversationSummary.objects.filter(conversation=conversation).exists()
