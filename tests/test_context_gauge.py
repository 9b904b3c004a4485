"""The chat header's context gauge: the next request's parts, counted as the request builder
counts them and checked against the requests the provider received; the provider's
reported prompt tokens for the last request; the chat's and the branch's cost from the
ledger; its push after every reply and branch change; and its cost in queries."""

import re
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal

import pytest
from channels.db import database_sync_to_async
from django.db import connection
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from conversations import selectors, services
from conversations.context import (
    ContextGauge,
    ReplyContext,
    context_budget,
    context_for_reply,
    context_gauge,
)
from conversations.context.recall import recall_budget
from conversations.context.window import conversation_counter
from conversations.models import (
    ChatModel,
    Conversation,
    Message,
    MessageStatus,
    Role,
    UsageKind,
    UsageRecord,
)
from tests.factories import (
    ChatModelFactory,
    ConversationFactory,
    ConversationSummaryFactory,
    MessageFactory,
    UsageRecordFactory,
    long_thread,
    thread,
)
from tests.fake_provider import Reply, count_prompt_tokens
from tests.wsclient import ChatSocket

# --- Reading the gauge as a page shows it ---------------------------------------------


@dataclass
class ShownGauge:
    """The figures a rendered gauge carries (its data attributes)."""

    parts: dict[str, int]
    used: int
    window: int
    last: tuple[int, bool] | None
    total: dict[str, Decimal]
    branch: dict[str, Decimal]

    @property
    def prompt(self) -> int:
        return self.used - self.parts.get("output", 0)


def _amounts(html: str, dd_id: str) -> dict[str, Decimal]:
    cell = re.search(rf'<dd id="{dd_id}">(.*?)</dd>', html, re.S).group(1)
    found = re.findall(r'data-currency="(\w+)" data-amount="([\d.]+)"', cell)
    return {currency: Decimal(amount) for currency, amount in found}


def shown(html: str) -> ShownGauge:
    assert 'id="context-gauge"' in html, "no gauge in this HTML"
    last = re.search(r'id="context-gauge-last" data-tokens="(\d+)" data-reported="(\w+)"', html)
    return ShownGauge(
        parts={k: int(v) for k, v in re.findall(r'data-part="(\w+)" data-tokens="(\d+)"', html)},
        used=int(re.search(r'data-used="(\d+)"', html).group(1)),
        window=int(re.search(r'data-window="(\d+)"', html).group(1)),
        last=(int(last.group(1)), last.group(2) == "true") if last else None,
        total=_amounts(html, "context-gauge-total"),
        branch=_amounts(html, "context-gauge-branch"),
    )


def next_request(conversation: Conversation, leaf: Message, text: str = "") -> ReplyContext:
    """The request the builder makes for a reply continuing `leaf` (after a new message
    `text`, when given): a pending reply, built as a reply's generator builds it."""
    parent = leaf
    if text:
        parent = MessageFactory(
            conversation=conversation, role=Role.USER, content=text, parent=leaf
        )
    reply = MessageFactory(
        conversation=conversation,
        role=Role.ASSISTANT,
        status=MessageStatus.PENDING,
        content="",
        parent=parent,
        chat_model=conversation.chat_model,
    )
    return context_for_reply(
        Message.objects.select_related("conversation__chat_model").get(pk=reply.pk)
    )


def ledger_sums(**filters) -> dict[str, Decimal]:
    rows = UsageRecord.objects.filter(**filters).values("currency").annotate(cost=Sum("cost"))
    return {row["currency"]: row["cost"] for row in rows}


def tokens_of(conversation: Conversation, messages: list[dict]) -> int:
    counter = conversation_counter(Conversation.objects.get(pk=conversation.pk))
    return sum(counter.message(m["role"], m["content"]) for m in messages)


# --- The next request, as the builder makes it ----------------------------------------


@pytest.mark.django_db
def test_with_a_summary_the_gauge_splits_the_system_message_the_request_sends(conversation):
    conversation.system_prompt = "Be kind and brief."
    conversation.save()
    messages = thread(conversation, "q1", "a1", "q2", "a2", "q3", "a3")
    ConversationSummaryFactory(
        conversation=conversation, covers_through=messages[3], text="They greeted each other."
    )
    gauge = context_gauge(conversation)
    context = next_request(conversation, messages[-1])
    system, *turns = context.messages
    assert "They greeted each other." in system["content"]
    assert gauge.summary > 0
    assert gauge.system_prompt == tokens_of(
        conversation, [{"role": "system", "content": "Be kind and brief."}]
    )
    assert gauge.system_prompt + gauge.summary == tokens_of(conversation, [system])
    assert gauge.turns == context.uncovered_tokens == tokens_of(conversation, turns)
    assert gauge.turns_sent == len(turns) == 2
    assert gauge.prompt == context.estimated_tokens


@pytest.mark.django_db
def test_when_old_turns_no_longer_fit_the_gauge_leaves_out_the_ones_the_request_does(user):
    small = ChatModelFactory(name="small-window", context_window=1500, max_output=200)
    conversation = ConversationFactory(owner=user, chat_model=small)
    ids = long_thread(conversation, 120)
    gauge = context_gauge(conversation)
    context = next_request(conversation, Message.objects.get(pk=ids[-1]))
    assert gauge.dropped_turns == context.dropped_turns > 0
    assert gauge.turns == context.uncovered_tokens
    assert gauge.turns_sent == len(context.messages)
    assert gauge.prompt == context.estimated_tokens <= gauge.budget == context.budget
    assert (gauge.window, gauge.output) == (1500, 200)
    assert gauge.used <= gauge.window


@pytest.mark.django_db
def test_recall_shows_what_the_last_request_recalled_within_the_recall_budget(user, recall_on):
    small = ChatModelFactory(name="small-window", context_window=1500, max_output=200)
    conversation = ConversationFactory(owner=user, chat_model=small)
    ids = long_thread(conversation, 120)
    Message.objects.filter(pk=ids[-1]).update(
        context={"estimated_tokens": 1000, "recall": {"tokens": 80, "messages": []}}
    )
    gauge = context_gauge(conversation)
    assert gauge.recall_budget == recall_budget(conversation, context_budget(conversation)) > 0
    assert gauge.recalled == 80
    assert gauge.prompt == gauge.system_prompt + gauge.turns + 80


@pytest.mark.django_db
def test_a_chat_sent_whole_recalls_nothing_whatever_the_last_request_did(conversation, recall_on):
    _, answer = thread(conversation, "q1", "a1")
    answer.context = {"estimated_tokens": 20, "recall": {"tokens": 80, "messages": []}}
    answer.save()
    gauge = context_gauge(conversation)
    assert gauge.recalled == 0 and gauge.recall_budget > 0
    assert "recall" not in [part.kind for part in gauge.parts]


@pytest.mark.django_db
def test_an_empty_chat_shows_the_system_prompt_and_the_replys_room(conversation):
    conversation.system_prompt = "You are a patient tutor."
    conversation.max_tokens = 1000
    conversation.save()
    gauge = context_gauge(conversation)
    assert gauge.system_prompt == tokens_of(
        conversation, [{"role": "system", "content": "You are a patient tutor."}]
    )
    assert (gauge.turns, gauge.summary, gauge.output) == (0, 0, 1000)
    assert gauge.last_request is None and gauge.costs.total == {}


def test_the_parts_sit_one_after_another_in_percent_of_the_window():
    gauge = ContextGauge(window=1000, budget=700, output=200, system_prompt=100, turns=300)
    assert [(p.kind, p.offset, p.percent) for p in gauge.parts] == [
        ("system", 0, 10),
        ("turns", 10, 30),
        ("output", 40, 20),
    ]
    assert (gauge.used, gauge.free, gauge.percent, gauge.level) == (600, 400, 60, "ok")
    over = ContextGauge(window=1000, budget=700, output=500, turns=1500)
    assert sum(p.percent for p in over.parts) == 100 and over.level == "full"
    # A short chat's turns in a large window still show, at the narrowest width.
    sliver = ContextGauge(window=128_000, budget=100_000, output=4096, turns=17)
    assert [(p.kind, p.percent) for p in sliver.parts] == [("turns", 2), ("output", 3.2)]


# --- Costs, from the ledger ----------------------------------------------------------


@pytest.mark.django_db
def test_the_chat_and_branch_costs_are_the_ledgers_sums_per_currency(conversation):
    owner = conversation.owner
    question, first = thread(conversation, "Capital of France?", "Paris.")
    UsageRecordFactory(user=owner, conversation=conversation, message=first, cost=Decimal("0.004"))
    again = services.reply_retry(reply=first)
    services.reply_finish(
        reply_id=again.id,
        outcome=services.CallOutcome(
            status=MessageStatus.COMPLETE, content="Paris, of course.", prompt_tokens=900,
            completion_tokens=40,
        ),
    )  # fmt: skip
    UsageRecordFactory(
        user=owner, conversation=conversation, message=again, cost=Decimal("0.5"), currency="CNY"
    )
    # Calls for the whole chat, on no branch: a summary in yuan, an embedding in dollars.
    UsageRecordFactory(
        user=owner, conversation=conversation, kind=UsageKind.SUMMARY, cost=Decimal("0.02"),
        currency="CNY",
    )  # fmt: skip
    UsageRecordFactory(
        user=owner, conversation=conversation, kind=UsageKind.EMBEDDING, cost=Decimal("0.0001")
    )
    UsageRecordFactory(user=owner, conversation=ConversationFactory(owner=owner))  # another chat

    gauge = context_gauge(conversation)
    on_branch = selectors.thread_path_ids(conversation)
    assert again.id in on_branch and first.id not in on_branch
    assert gauge.costs.total == ledger_sums(conversation=conversation)
    assert gauge.costs.branch == ledger_sums(message_id__in=on_branch)
    assert set(gauge.costs.total) == {"USD", "CNY"}
    assert gauge.costs.branch["USD"] < gauge.costs.total["USD"]

    services.conversation_switch_branch(conversation=conversation, message=first)
    switched = context_gauge(conversation)
    assert switched.costs.branch == ledger_sums(message=first) == {"USD": Decimal("0.004")}
    assert switched.costs.total == gauge.costs.total


@pytest.mark.django_db
def test_without_branches_the_branch_is_every_reply_and_not_the_chats_own_calls(conversation):
    owner = conversation.owner
    _, answer, _, later = thread(conversation, "q1", "a1", "q2", "a2")
    for reply, cost in ((answer, "0.001"), (later, "0.002")):
        UsageRecordFactory(user=owner, conversation=conversation, message=reply, cost=Decimal(cost))
    UsageRecordFactory(
        user=owner, conversation=conversation, kind=UsageKind.TITLE, cost=Decimal("0.0005")
    )
    gauge = context_gauge(conversation)
    assert gauge.costs.branch == {"USD": Decimal("0.003")}
    assert gauge.costs.total == {"USD": Decimal("0.0035")}


# --- Cost in queries -------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("summarised", [True, False], ids=["summarised", "turns-left-out"])
def test_the_gauge_costs_as_few_queries_for_a_long_branched_chat_as_for_a_short_one(
    user, summarised
):
    window = (
        ChatModelFactory() if summarised else ChatModelFactory(name="small", context_window=1500)
    )

    def chat(count: int) -> Conversation:
        conversation = ConversationFactory(owner=user, chat_model=window)
        ids = long_thread(conversation, count)
        if summarised:
            through = Message.objects.get(pk=ids[-30])
            ConversationSummaryFactory(conversation=conversation, covers_through=through)
        Message.objects.filter(pk=ids[-1]).update(context={"estimated_tokens": 500})
        for message_id in ids[1::2][-20:]:
            UsageRecordFactory(user=user, conversation=conversation, message_id=message_id)
        Conversation.objects.filter(pk=conversation.pk).update(has_branches=True)
        return Conversation.objects.get(pk=conversation.pk)

    def count(conversation: Conversation) -> int:
        with CaptureQueriesContext(connection) as queries:
            gauge = context_gauge(conversation)
        assert (gauge.summary > 0) == summarised and (gauge.dropped_turns > 0) != summarised
        assert gauge.last_request is not None and gauge.costs.branch
        return len(queries)

    short, long = chat(60), chat(3000)
    assert count(long) == count(short) <= 8


# --- Over the socket: what the provider received next --------------------------------


@asynccontextmanager
async def chat_tab(conversation: Conversation):
    socket = ChatSocket(conversation, conversation.owner)
    await socket.connect()
    try:
        yield socket
    finally:
        await socket.close()


@database_sync_to_async
def _prepare(conversation: Conversation, **fields) -> Conversation:
    Conversation.objects.filter(pk=conversation.pk).update(**fields)
    return Conversation.objects.select_related("owner").get(pk=conversation.pk)


@database_sync_to_async
def _latest_reply(conversation) -> Message:
    return Message.objects.filter(conversation=conversation, role=Role.ASSISTANT).latest("id")


async def _ask(tab: ChatSocket, text: str, key: str) -> Message:
    await tab.say(text, key)
    await tab.read_until(
        lambda page: (
            page.last("user") is not None
            and page.last("user").text == text
            and page.last().status == "complete"
        ),
        timeout=15,
    )
    return await _latest_reply(tab.conversation)


pytest_socket = pytest.mark.django_db(transaction=True)


@pytest_socket
async def test_the_gauge_pushed_after_a_reply_is_the_next_request_the_provider_receives(
    conversation, fake_provider
):
    conversation = await _prepare(conversation, system_prompt="You are terse.", max_tokens=512)
    fake_provider.script(Reply(content="Paris."), Reply(content="About two million."))
    async with chat_tab(conversation) as tab:
        tab.conversation = conversation
        await _ask(tab, "Capital of France?", "k1")
        assert tab.page.gauge_pushes == 1, "the reply's final push carried the gauge"
        pushed = shown(tab.page.gauge)
        reply = await _ask(tab, "How many people live there?", "k2")
    sent = fake_provider.chat_requests[-1].json
    system, *earlier, new = sent["messages"]
    assert [m["content"] for m in earlier] == ["Capital of France?", "Paris."]
    assert pushed.parts["system"] == await database_sync_to_async(tokens_of)(conversation, [system])
    assert pushed.parts["turns"] == await database_sync_to_async(tokens_of)(conversation, earlier)
    assert pushed.parts["output"] == sent["max_tokens"] == 512
    assert pushed.window == 32_768
    # What the request recorded of itself: the gauge's figures and the new message.
    new_tokens = await database_sync_to_async(tokens_of)(conversation, [new])
    assert reply.context["estimated_tokens"] == pushed.prompt + new_tokens
    assert reply.context["uncovered_tokens"] == pushed.parts["turns"] + new_tokens


@pytest_socket
async def test_the_last_request_is_the_providers_reported_prompt_tokens_not_our_estimate(
    conversation, fake_provider
):
    fake_provider.script(Reply(content="Ok."))
    async with chat_tab(conversation) as tab:
        tab.conversation = conversation
        reply = await _ask(tab, "Say ok, please, and nothing else at all.", "k1")
    reported = count_prompt_tokens(fake_provider.chat_requests[-1].json)
    assert shown(tab.page.gauge).last == (reported, True)
    assert reported != reply.context["estimated_tokens"]
    assert "as the provider reported" in tab.page.gauge


@pytest_socket
async def test_without_reported_usage_the_last_request_is_the_estimate_and_says_so(
    conversation, fake_provider
):
    fake_provider.script(Reply(content="Ok.", usage=None))
    async with chat_tab(conversation) as tab:
        tab.conversation = conversation
        reply = await _ask(tab, "Say ok.", "k1")
    assert shown(tab.page.gauge).last == (reply.context["estimated_tokens"], False)
    assert "estimated (the provider reported none)" in tab.page.gauge


@pytest_socket
async def test_the_pushed_gauge_counts_with_the_calibration_its_reply_taught(
    conversation, fake_provider
):
    prompt = "Answer in one short sentence, and never use lists or headings. " * 8
    conversation = await _prepare(conversation, system_prompt=prompt)
    usage = {"prompt_tokens": 400, "completion_tokens": 3, "total_tokens": 403}
    fake_provider.script(Reply(content="Ok.", usage=usage))
    async with chat_tab(conversation) as tab:
        tab.conversation = conversation
        reply = await _ask(tab, "Hello there", "k1")
    pushed = shown(tab.page.gauge)
    ratio = await database_sync_to_async(
        lambda: ChatModel.objects.get(pk=conversation.chat_model_id).token_ratio
    )()
    assert ratio > 1.0, "the reported 400 tokens moved the calibration"
    context = await database_sync_to_async(next_request)(conversation, reply, "And then?")
    question = await database_sync_to_async(tokens_of)(
        conversation, [{"role": "user", "content": "And then?"}]
    )
    assert pushed.prompt + question == context.estimated_tokens


@pytest_socket
async def test_each_reply_pushes_the_gauge_with_the_chats_cost_so_far(conversation, fake_provider):
    fake_provider.script(Reply(content="One."), Reply(content="Two."))
    async with chat_tab(conversation) as tab:
        tab.conversation = conversation
        await _ask(tab, "First", "k1")
        first = shown(tab.page.gauge)
        await _ask(tab, "Second", "k2")
        second = shown(tab.page.gauge)
    assert tab.page.gauge_pushes == 2
    assert second.parts["turns"] > first.parts["turns"]
    ledger = await database_sync_to_async(ledger_sums)(conversation=conversation)
    assert second.total == second.branch == ledger
    assert first.total["USD"] < second.total["USD"]


@pytest_socket
async def test_a_regeneration_and_a_switch_back_push_the_gauge_of_the_branch_on_screen(
    conversation, fake_provider
):
    fake_provider.script(Reply(content="Paris."), Reply(content="Paris, of course."))
    async with chat_tab(conversation) as tab:
        tab.conversation = conversation
        first = await _ask(tab, "Capital of France?", "k1")
        await tab.send(action="retry", reply=str(first.uuid))
        await tab.read_until(
            lambda page: page.last().uuid != str(first.uuid) and page.last().status == "complete"
        )
        again = await _latest_reply(conversation)
        regenerated = shown(tab.page.gauge)
        pushes = tab.page.gauge_pushes
        await tab.send(action="branch", version=str(first.uuid))
        await tab.read_until(lambda page: page.gauge_pushes > pushes)
        switched = shown(tab.page.gauge)
    sums = database_sync_to_async(ledger_sums)
    assert regenerated.total == switched.total == await sums(conversation=conversation)
    assert regenerated.branch == await sums(message=again)
    assert switched.branch == await sums(message=first)
    assert regenerated.branch != switched.branch


@pytest_socket
async def test_a_tab_away_when_its_reply_ended_gets_the_gauge_when_it_reconnects(
    conversation, fake_provider
):
    fake_provider.script(Reply(content="Done."))
    async with chat_tab(conversation) as tab:
        tab.conversation = conversation
        reply = await _ask(tab, "Hi", "k1")
    away = ChatSocket(conversation, conversation.owner)
    await away.connect(last=str(reply.uuid), status="streaming")
    await away.read_until(lambda page: page.gauge_pushes == 1)
    await away.close()
    assert shown(away.page.gauge) == shown(tab.page.gauge)
    # A page that saw its reply end keeps the gauge it has: nothing is sent again.
    back = ChatSocket(conversation, conversation.owner)
    await back.connect(last=str(reply.uuid), status="complete")
    await back.send(action="no-such-action")  # answered after everything the sync sends
    await back.read_until(lambda page: page.notices)
    await back.close()
    assert back.page.last() is not None and back.page.gauge_pushes == 0


# --- The page, and the settings that change the window -------------------------------


@pytest.mark.django_db
def test_the_chat_page_shows_the_gauge_in_its_header(client, conversation):
    thread(conversation, "q1", "a1")
    client.force_login(conversation.owner)
    html = client.get(reverse("conversation", args=[conversation.uuid])).content.decode()
    header = html[html.index('<header class="chat-header">') : html.index("</header>")]
    gauge = context_gauge(conversation)
    assert f'aria-label="Context {gauge.used:,} of 32,768 tokens ({gauge.percent}%)"' in header
    assert shown(header).parts == {part.kind: part.tokens for part in gauge.parts}
    assert "Messages sent verbatim: " in header and "hx-swap-oob" not in header
    assert " style=" not in header, "the CSP allows no inline style"


@pytest.mark.django_db
def test_saving_settings_swaps_in_the_gauge_of_the_new_window(client, conversation):
    client.force_login(conversation.owner)
    data = {"model": conversation.chat_model_id, "system_prompt": "", "parameters": "1"}
    response = client.post(
        reverse("conversation_settings", args=[conversation.uuid]),
        {**data, "max_tokens": "1000"},
        HTTP_HX_REQUEST="true",
    )
    html = response.content.decode()
    assert 'id="context-gauge" hx-swap-oob="true"' in html
    assert shown(html).parts["output"] == 1000
