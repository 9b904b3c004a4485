"""The usage ledger: one record per upstream call, priced at that moment, shown per reply."""

from decimal import Decimal

import pytest
from channels.db import database_sync_to_async

from conversations import presenters, selectors, services, usage
from conversations.models import Message, MessageStatus, Role, UsageKind, UsageRecord
from tests.factories import ChatModelFactory, thread
from tests.fake_provider import Reply
from tests.wsclient import ChatSocket

pytestmark = pytest.mark.django_db(transaction=True)

REPORTED = {
    "prompt_tokens": 1000,
    "completion_tokens": 200,
    "total_tokens": 1200,
    "prompt_tokens_details": {"cached_tokens": 600},
    "completion_tokens_details": {"reasoning_tokens": 50},
}


@database_sync_to_async
def _records(**filters) -> list[UsageRecord]:
    return list(UsageRecord.objects.filter(**filters).order_by("id"))


@database_sync_to_async
def _latest_reply(conversation) -> Message:
    return Message.objects.filter(conversation=conversation, role=Role.ASSISTANT).latest("id")


async def _ask(tab: ChatSocket, text: str, key: str, expect: str) -> Message:
    await tab.say(text, key)
    await tab.read_until(
        lambda page: (
            page.last() is not None
            and page.last("user") is not None
            and page.last("user").text == text
            and page.last().status == expect
        ),
        timeout=15,
    )
    return await _latest_reply(tab.conversation)


@pytest.fixture
async def tab(conversation):
    socket = ChatSocket(conversation, conversation.owner)
    socket.conversation = conversation
    await socket.connect()
    yield socket
    await socket.close()


async def test_n_upstream_calls_make_n_records(tab, conversation, fake_provider):
    fake_provider.script(
        Reply(content="One.", usage=REPORTED),
        Reply(status=429, headers={"Retry-After": "0"}),
        Reply(content="Two, after a retry."),
        Reply(content=[f"w{i} " for i in range(10)], disconnect_after=4),
    )
    await _ask(tab, "First", "k1", "complete")
    await _ask(tab, "Second", "k2", "complete")
    await _ask(tab, "Third", "k3", "interrupted")
    records = await _records()
    assert len(fake_provider.chat_requests) == 4
    assert len(records) == 4
    assert [r.kind for r in records] == [UsageKind.CHAT] * 4
    assert all(r.user_id == conversation.owner_id for r in records)


async def test_a_retried_rate_limited_attempt_is_a_zero_token_record(
    tab, conversation, fake_provider
):
    fake_provider.script(
        Reply(status=429, headers={"Retry-After": "0"}),
        Reply(content="Finally.", usage=REPORTED),
    )
    reply = await _ask(tab, "Hi", "k1", "complete")
    retried, answered = await _records(message=reply)
    assert retried.retried and retried.reported
    assert (retried.prompt_tokens, retried.completion_tokens, retried.cost) == (0, 0, 0)
    assert not answered.retried and answered.prompt_tokens == 1000


async def test_a_reply_failing_after_every_retry_records_each_attempt_and_bills_nothing(
    tab, fake_provider
):
    limited = Reply(status=429, headers={"Retry-After": "0"})
    fake_provider.script(limited, limited, limited)
    reply = await _ask(tab, "Hi", "k1", "failed")
    records = await _records(message=reply)
    assert len(records) == len(fake_provider.chat_requests) == 3
    assert [r.retried for r in records] == [True, True, False]
    assert sum(r.prompt_tokens + r.completion_tokens for r in records) == 0
    assert all(r.reported for r in records), "a refusal is a known zero, not an estimate"


async def test_a_rejected_stream_option_and_its_retry_are_two_records(tab, fake_provider):
    picky = Reply(content="Fine.", reject_stream_options=True)
    fake_provider.script(picky, picky)
    reply = await _ask(tab, "Hi", "k1", "complete")
    rejected, answered = await _records(message=reply)
    assert rejected.retried and rejected.completion_tokens == 0
    assert answered.estimated and answered.completion_tokens > 0


async def test_a_stopped_reply_is_recorded_with_estimated_usage(tab, fake_provider):
    fake_provider.script(Reply(content=[f"t{i} " for i in range(200)], tokens_per_second=40))
    await tab.say("Long one", "k1")
    await tab.read_until_text(15)
    await tab.send(action="stop")
    await tab.read_until_reply("cancelled")
    reply = await _latest_reply(tab.conversation)
    (record,) = await _records(message=reply)
    assert reply.status == MessageStatus.CANCELLED
    assert record.estimated and record.completion_tokens > 0 and record.cost > 0


async def test_a_cut_stream_is_recorded_as_estimated(tab, fake_provider):
    fake_provider.script(Reply(content=[f"part{i} " for i in range(10)], disconnect_after=5))
    reply = await _ask(tab, "Hi", "k1", "interrupted")
    (record,) = await _records(message=reply)
    assert not record.reported and record.estimated
    assert record.prompt_tokens > 0 and record.completion_tokens > 0


async def test_reported_usage_is_stored_as_reported_and_priced_with_cached_tokens(
    tab, fake_provider
):
    fake_provider.script(Reply(content="Ok.", usage=REPORTED))
    reply = await _ask(tab, "Hi", "k1", "complete")
    (record,) = await _records(message=reply)
    assert record.reported
    assert (record.prompt_tokens, record.cached_tokens) == (1000, 600)
    assert (record.completion_tokens, record.reasoning_tokens) == (200, 50)
    # 400 uncached at 2, 600 cached at 0.5, 200 out at 8, per million tokens.
    assert record.cost == Decimal("0.0027") and record.currency == "USD"


async def test_the_reply_footer_shows_cost_first_token_time_and_speed(tab, fake_provider):
    fake_provider.script(Reply(content="Ok then.", usage=REPORTED))
    await _ask(tab, "Hi", "k1", "complete")
    html = tab.page.last().html
    assert "0.0027 USD" in html
    assert "first token" in html and "tokens/s" in html


# Each provider's way of saying how much of the prompt its cache served (real shapes).
USAGE_SHAPES = {
    # DeepSeek: hit and miss counts beside prompt_tokens, no details object.
    "deepseek": {
        "prompt_tokens": 1000,
        "completion_tokens": 200,
        "total_tokens": 1200,
        "prompt_cache_hit_tokens": 600,
        "prompt_cache_miss_tokens": 400,
        "completion_tokens_details": {"reasoning_tokens": 50},
    },
    # DashScope (compatible mode) and OpenAI: prompt_tokens_details.cached_tokens.
    "dashscope": {
        "prompt_tokens": 1000,
        "completion_tokens": 200,
        "total_tokens": 1200,
        "prompt_tokens_details": {"cached_tokens": 600},
        "completion_tokens_details": {"reasoning_tokens": 50},
    },
    "openai": REPORTED,
}


@pytest.mark.parametrize("shape", sorted(USAGE_SHAPES))
async def test_each_providers_cache_hits_are_priced_at_the_cached_rate(tab, fake_provider, shape):
    fake_provider.script(Reply(content="Cached.", usage=USAGE_SHAPES[shape]))
    reply = await _ask(tab, "Hi", "k1", "complete")
    (record,) = await _records(message=reply)
    assert (record.prompt_tokens, record.cached_tokens, record.reasoning_tokens) == (1000, 600, 50)
    # 400 uncached at 2, 600 cached at 0.5, 200 out at 8, per million tokens.
    assert record.cost == Decimal("0.0027")


async def test_the_reply_footer_shows_cached_and_thinking_tokens(tab, fake_provider):
    fake_provider.script(Reply(content="Thought.", usage=USAGE_SHAPES["deepseek"]))
    await _ask(tab, "Hi", "k1", "complete")
    html = tab.page.last().html
    assert "600 cached" in html and "50 thinking" in html


async def test_thinking_a_provider_does_not_count_is_estimated_from_the_reasoning(
    tab, fake_provider
):
    # Zhipu-like: usage without completion_tokens_details, the reasoning streamed.
    usage = {"prompt_tokens": 100, "completion_tokens": 400, "total_tokens": 500}
    reasoning = "Let me think about this carefully, step by step, before I answer. " * 8
    fake_provider.script(Reply(content="Done.", reasoning=reasoning, usage=usage))
    reply = await _ask(tab, "Hi", "k1", "complete")
    (record,) = await _records(message=reply)
    assert record.reported and record.completion_tokens == 400
    assert 50 < record.reasoning_tokens < 400
    assert reply.reasoning_tokens == record.reasoning_tokens


def test_cost_counts_cached_prompt_tokens_at_the_cached_price(chat_model):
    cost = services.usage_cost(prompt=1000, cached=600, completion=200, chat_model=chat_model)
    assert cost == Decimal("0.0027")
    all_cached = services.usage_cost(prompt=1000, cached=1000, completion=0, chat_model=chat_model)
    assert all_cached == Decimal("0.0005")


def test_a_record_keeps_the_price_of_its_moment(conversation):
    chat_model = conversation.chat_model
    outcome = services.CallOutcome(
        status="complete", content="x", prompt_tokens=1_000_000, completion_tokens=0
    )
    first = services.usage_record_create(
        user_id=conversation.owner_id,
        conversation=conversation,
        message=None,
        chat_model=chat_model,
        model_name=chat_model.name,
        kind=UsageKind.CHAT,
        outcome=outcome,
    )
    chat_model.input_price = Decimal("3")
    chat_model.save()
    first.refresh_from_db()
    assert first.cost == Decimal("2") and first.input_price == Decimal("2")


def test_a_cny_provider_records_cost_in_cny(user):
    qwen = ChatModelFactory(
        provider__slug="qwen",
        provider__name="Qwen",
        provider__currency="CNY",
        name="qwen-plus",
        input_price=Decimal("0.8"),
        cached_input_price=Decimal("0.16"),
        output_price=Decimal("2"),
    )
    outcome = services.CallOutcome(
        status="complete",
        content="x",
        prompt_tokens=2000,
        cached_tokens=1000,
        completion_tokens=500,
    )
    record = services.usage_record_create(
        user_id=user.pk,
        conversation=None,
        message=None,
        chat_model=qwen,
        model_name=qwen.name,
        kind=UsageKind.TITLE,
        outcome=outcome,
    )
    assert record.currency == "CNY" and record.provider_slug == "qwen"
    assert record.cost == Decimal("0.00196")  # (1000*0.8 + 1000*0.16 + 500*2) / 1e6


def test_a_summary_call_writes_a_summary_record(conversation, fake_provider, summary_settings):
    messages = thread(conversation, "q1", "a1", "q2", "a2", "q3", "a3")
    fake_provider.script(Reply(content="They talked.", usage=REPORTED))
    summary = services.summary_create(
        conversation_id=conversation.pk, leaf_id=messages[-1].pk, through_id=messages[1].pk
    )
    assert summary is not None
    (record,) = UsageRecord.objects.all()
    assert record.kind == UsageKind.SUMMARY and record.reported
    assert record.conversation_id == conversation.pk
    assert len(fake_provider.chat_requests) == 1


def test_a_page_of_messages_reads_costs_and_versions_in_two_queries(
    conversation, django_assert_num_queries
):
    messages = thread(conversation, *[f"m{i}" for i in range(20)])
    outcome = services.CallOutcome(status="complete", content="x", prompt_tokens=10)
    for message in messages[1::2]:
        services.usage_record_create(
            user_id=conversation.owner_id,
            conversation=conversation,
            message=message,
            chat_model=conversation.chat_model,
            model_name="fake-model",
            kind=UsageKind.CHAT,
            outcome=outcome,
        )
    # The images are read by the thread selector before a page is presented.
    selectors.attach_images(messages)
    # One query for every reply's cost, one for every message's place among its versions;
    # presenting what was read queries nothing.
    with django_assert_num_queries(2):
        reads = selectors.read_messages(messages)
    with django_assert_num_queries(0):
        views = presenters.views_of_messages(reads)
    assert all(v.cost == Decimal("0.00002") for v in views[1::2])
    assert all(v.cost is None for v in views[0::2])


def test_usage_totals_never_add_currencies(user):
    from tests.factories import UsageRecordFactory

    UsageRecordFactory(user=user, cost=Decimal("1.5"), currency="USD")
    UsageRecordFactory(user=user, cost=Decimal("7"), currency="CNY", provider_slug="qwen")
    totals = usage.usage_month_for_user(user).totals
    assert totals.cost == {"CNY": Decimal("7"), "USD": Decimal("1.5")}
    assert totals.tokens == 3000
