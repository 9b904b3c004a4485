"""Continue: a reply cut off by its output limit goes on in the same reply, in each
provider's continuation shape, billed and recorded like any call."""

import pytest
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from conversations import services
from conversations.errors import ValidationFailed
from conversations.live import events
from conversations.models import (
    ChatModel,
    Message,
    MessageStatus,
    Provider,
    Role,
    UsageRecord,
)
from conversations.pages import message_html
from conversations.providers import profiles
from conversations.templatetags.money import money
from tests.factories import ChatModelFactory, ConversationFactory, MessageFactory
from tests.fake_provider import Reply
from tests.wsclient import ChatSocket

pytestmark = pytest.mark.django_db(transaction=True)

FIRST = "The first half of a long answer, "
SECOND = "and the second half."


@pytest.fixture
def on_profile(user, settings, fake_provider):
    """A conversation of `user` on a built-in catalogue model served by the fake provider."""

    def make(slug: str, model_name: str, **fields):
        settings.PROVIDER_CREDENTIALS = {
            **settings.PROVIDER_CREDENTIALS,
            slug: {"api_key": "test-key", "base_url": fake_provider.base_url},
        }
        if slug == "local":  # the fake provider's own model (the catalogue lists none)
            chat_model = ChatModelFactory(name=model_name)
        else:
            chat_model = ChatModel.objects.get(provider__slug=slug, name=model_name)
        return ConversationFactory(owner=user, chat_model=chat_model, **fields)

    return database_sync_to_async(make)


def _reply(conversation) -> Message:
    return Message.objects.filter(conversation=conversation, role=Role.ASSISTANT).latest("id")


async def _cut_off(conversation, fake_provider, *, usage="auto") -> ChatSocket:
    """A tab whose question got a reply cut off by its length limit."""
    fake_provider.script(Reply(content=FIRST, finish_reason="length", usage=usage))
    tab = ChatSocket(conversation, conversation.owner)
    await tab.connect()
    await tab.say("Tell me everything", "k1")
    await tab.read_until_reply("truncated", timeout=15)
    return tab


async def _continue(tab, conversation, expect="complete"):
    reply = await database_sync_to_async(_reply)(conversation)
    await tab.send(action="continue", reply=str(reply.uuid))
    await tab.read_until(
        lambda page: page.last().status == expect and SECOND in page.last().text, timeout=15
    )
    return await database_sync_to_async(_reply)(conversation)


async def _continued(conversation, fake_provider, second=None):
    tab = await _cut_off(conversation, fake_provider)
    fake_provider.script(second or Reply(content=SECOND))
    reply = await _continue(tab, conversation)
    await tab.close()
    return reply, fake_provider.chat_requests[-1]


# --- the request, per provider ---------------------------------------------------------


async def test_deepseek_continues_by_chat_prefix_completion_on_its_beta_endpoint(
    on_profile, fake_provider
):
    conversation = await on_profile("deepseek", "deepseek-chat")
    _, request = await _continued(conversation, fake_provider)
    assert request.path == "/beta/chat/completions"
    assert request.continuation == "prefix"
    messages = request.json["messages"]
    assert messages[-1] == {"role": "assistant", "content": FIRST, "prefix": True}
    assert messages[-2] == {"role": "user", "content": "Tell me everything"}


async def test_dashscope_continues_in_partial_mode_with_thinking_off(on_profile, fake_provider):
    conversation = await on_profile("dashscope", "qwen-plus", thinking_enabled=True)
    _, request = await _continued(conversation, fake_provider)
    assert request.path == "/v1/chat/completions"
    assert request.continuation == "partial"
    assert request.json["messages"][-1] == {"role": "assistant", "content": FIRST, "partial": True}
    # Partial mode is for non-thinking mode only.
    assert request.json["enable_thinking"] is False and "thinking_budget" not in request.json


@pytest.mark.parametrize(
    ("slug", "model_name"),
    [("zhipu", "glm-4-plus"), ("openai", "gpt-4o-mini"), ("local", "fake-model")],
)
async def test_other_providers_are_asked_in_words_to_go_on_without_repeating(
    on_profile, fake_provider, slug, model_name
):
    conversation = await on_profile(slug, model_name)
    _, request = await _continued(conversation, fake_provider)
    assert request.path == "/v1/chat/completions" and request.continuation == ""
    assert request.json["messages"][-2:] == [
        {"role": "assistant", "content": FIRST},
        {"role": "user", "content": profiles.CONTINUE_INSTRUCTION},
    ]


def test_a_qwen_model_that_cannot_stop_thinking_is_asked_in_words_not_partial_mode():
    thinker = ChatModel(
        provider=Provider(slug="dashscope"), name="qwq", supports_thinking=True, always_thinks=True
    )
    shape = profiles.continuation(
        thinker, messages=[], partial=FIRST, base_url="https://x/v1", body_fields={}
    )
    assert shape.shape == "instruction"
    assert shape.messages[-1] == {"role": "user", "content": profiles.CONTINUE_INSTRUCTION}


def test_the_beta_endpoint_is_found_from_any_configured_deepseek_url():
    for configured in ("https://api.deepseek.com", "https://api.deepseek.com/v1/"):
        assert profiles.beta_base_url(configured) == "https://api.deepseek.com/beta"


# --- the reply and the ledger ------------------------------------------------------------


async def test_continue_appends_to_the_same_reply_and_sums_its_calls(conversation, fake_provider):
    first_usage = {"prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110}
    tab = await _cut_off(conversation, fake_provider, usage=first_usage)
    truncated = await database_sync_to_async(_reply)(conversation)
    second_usage = {"prompt_tokens": 120, "completion_tokens": 6, "total_tokens": 126}
    fake_provider.script(Reply(content=SECOND, usage=second_usage))
    gauges = tab.page.gauge_pushes
    reply = await _continue(tab, conversation)
    await tab.read_until(lambda page: page.gauge_pushes > gauges)  # its cost, the next request
    await tab.close()
    assert reply.id == truncated.id  # the same reply, not a new version
    assert reply.content == FIRST + SECOND
    assert tab.page.last().text.strip().startswith(FIRST.strip())
    assert (reply.status, reply.finish_reason) == (MessageStatus.COMPLETE, "stop")
    assert (reply.prompt_tokens, reply.completion_tokens) == (220, 16)
    records = await database_sync_to_async(
        lambda: list(UsageRecord.objects.filter(message=reply).order_by("id"))
    )()
    assert [(r.prompt_tokens, r.completion_tokens) for r in records] == [(100, 10), (120, 6)]
    assert records[1].priced_at >= records[0].priced_at  # each priced as its call started
    # The footer shows both calls' cost.
    html = await database_sync_to_async(message_html)(reply)
    assert f'class="message-cost">{money(records[0].cost + records[1].cost)} USD' in html
    assert 'class="continue-form"' not in html


async def test_a_continuation_cut_off_again_offers_continue_again(conversation, fake_provider):
    tab = await _cut_off(conversation, fake_provider)
    fake_provider.script(Reply(content=SECOND, finish_reason="length"))
    reply = await _continue(tab, conversation, expect="truncated")
    await tab.close()
    assert reply.finish_reason == "length" and reply.content == FIRST + SECOND
    assert 'class="continue-form"' in tab.page.last().html
    assert await database_sync_to_async(UsageRecord.objects.filter(message=reply).count)() == 2


async def test_stop_during_a_continuation_keeps_every_word_shown(conversation, fake_provider):
    tab = await _cut_off(conversation, fake_provider)
    words = [f"more{i} " for i in range(400)]
    fake_provider.script(Reply(content=words, tokens_per_second=40))
    reply = await database_sync_to_async(_reply)(conversation)
    await tab.send(action="continue", reply=str(reply.uuid))
    await tab.read_until(lambda page: "more3" in page.last().text, timeout=15)
    await tab.send(action="stop")
    await tab.read_until_reply("cancelled", timeout=15)
    await tab.close()
    stopped = await database_sync_to_async(_reply)(conversation)
    assert stopped.content.startswith(FIRST + "more0 more1 more2 more3")
    assert tab.page.last().text.strip().startswith(FIRST.strip())
    assert await database_sync_to_async(UsageRecord.objects.filter(message=stopped).count)() == 2


async def test_a_second_tab_sees_the_continuation_stream_into_the_reply(
    conversation, fake_provider
):
    tab = await _cut_off(conversation, fake_provider)
    other = ChatSocket(conversation, conversation.owner)
    await other.connect()
    await other.read_until_reply("truncated")
    fake_provider.script(Reply(content=SECOND))
    await _continue(tab, conversation)
    await other.read_until(lambda page: page.last().status == "complete")
    await tab.close()
    await other.close()
    assert FIRST.strip() in other.page.last().text and SECOND in other.page.last().text


def test_only_the_latest_reply_cut_by_length_can_be_continued(conversation):
    question = MessageFactory(conversation=conversation, role=Role.USER, content="Q")
    complete = MessageFactory(
        conversation=conversation, role=Role.ASSISTANT, parent=question, finish_reason="stop"
    )
    conversation.current_leaf = complete
    conversation.save()
    with pytest.raises(ValidationFailed):
        services.reply_continue(reply=complete)
    cut = MessageFactory(
        conversation=conversation,
        role=Role.ASSISTANT,
        parent=question,
        status=MessageStatus.TRUNCATED,
        finish_reason="length",
    )
    with pytest.raises(ValidationFailed):  # not the branch on screen
        services.reply_continue(reply=cut)
    conversation.current_leaf = cut
    conversation.save()
    assert services.reply_continue(reply=cut).status == MessageStatus.PENDING


async def test_a_tab_that_saw_the_reply_end_follows_its_continuation_from_another_process(
    conversation, fake_provider
):
    tab = await _cut_off(conversation, fake_provider)
    reply = await database_sync_to_async(_reply)(conversation)
    group = events.conversation_group(conversation.uuid)

    async def from_elsewhere(content: str, continued_at: int) -> None:
        await get_channel_layer().group_send(
            group,
            {
                "type": events.REPLY_UPDATE,
                "origin": "another-process",
                "reply": str(reply.uuid),
                "status": "streaming",
                "content": content,
                "reasoning": "",
                "final_html": None,
                "swept": False,
                "continued_at": continued_at,
            },
        )

    await from_elsewhere(FIRST + "stale", 0)  # a late update of the first call: ignored
    await tab.drain(0.3)
    assert tab.page.last().status == "truncated"
    await from_elsewhere(FIRST + "and on", 1_000)
    await tab.read_until(lambda page: page.last().status == "streaming")
    await tab.close()
    # The content streams as rendered Markdown: its text ends with the paragraph's newline.
    assert tab.page.last().text.rstrip().endswith(FIRST + "and on")


async def test_a_refused_continuation_leaves_the_reply_cut_off_to_try_again(
    conversation, fake_provider
):
    tab = await _cut_off(conversation, fake_provider)
    refusal = Reply(
        status=400,
        error_code="context_length_exceeded",
        error_message="This model's maximum context length is 8192 tokens.",
    )
    fake_provider.script(refusal)
    reply = await database_sync_to_async(_reply)(conversation)
    await tab.send(action="continue", reply=str(reply.uuid))
    await tab.read_until(lambda page: "context window" in page.last().html, timeout=15)
    await tab.close()
    after = await database_sync_to_async(_reply)(conversation)
    assert (after.status, after.finish_reason, after.content) == ("truncated", "length", FIRST)
    assert 'class="continue-form"' in tab.page.last().html  # it may be continued again
    records = await database_sync_to_async(
        lambda: list(UsageRecord.objects.filter(message=after).order_by("id"))
    )()
    assert len(records) == 2 and records[1].prompt_tokens == records[1].completion_tokens == 0


async def test_a_refused_continuation_adds_no_tokens_to_the_replys_footer(
    conversation, fake_provider
):
    tab = await _cut_off(conversation, fake_provider)
    before = await database_sync_to_async(_reply)(conversation)
    shown = f"{before.prompt_tokens} → {before.completion_tokens} tokens"
    assert before.prompt_tokens and shown in tab.page.last().html
    fake_provider.script(
        Reply(status=400, error_code="context_length_exceeded", error_message="Too long.")
    )
    await tab.send(action="continue", reply=str(before.uuid))
    await tab.read_until(lambda page: "context window" in page.last().html, timeout=15)
    await tab.close()
    after = await database_sync_to_async(_reply)(conversation)
    records = await database_sync_to_async(
        lambda: list(UsageRecord.objects.filter(message=after).order_by("id"))
    )()
    assert len(records) == 2 and records[1].prompt_tokens == 0, "the refusal is billed nothing"
    # The reply's counts are its calls' as the ledger has them: the first call's alone.
    assert after.prompt_tokens == sum(record.prompt_tokens for record in records)
    assert after.completion_tokens == before.completion_tokens
    assert shown in tab.page.last().html
    html = await database_sync_to_async(message_html)(after)
    assert shown in html
