"""Provider profiles: the exact body each provider receives for a conversation's settings,
what comes back (reasoning apart, JSON checked) and what is never sent again."""

import json

import pytest
from channels.db import database_sync_to_async

from conversations.models import ChatModel, Message, Provider, Role, UsageRecord
from conversations.pages import message_html
from conversations.providers import profiles
from tests.factories import ChatModelFactory, ConversationFactory, MessageFactory
from tests.fake_provider import Reply
from tests.wsclient import ChatSocket

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def on_profile(user, settings, fake_provider):
    """A conversation of `user` on a built-in catalogue model served by the fake provider."""

    def make(slug: str, model_name: str, **fields):
        settings.PROVIDER_CREDENTIALS = {
            **settings.PROVIDER_CREDENTIALS,
            slug: {"api_key": "test-key", "base_url": fake_provider.base_url},
        }
        chat_model = ChatModel.objects.get(provider__slug=slug, name=model_name)
        return ConversationFactory(owner=user, chat_model=chat_model, **fields)

    return database_sync_to_async(make)


async def _ask(conversation, fake_provider, *replies: Reply, text="Question", expect="complete"):
    """Send one message and wait for its reply; returns the body the provider received."""
    fake_provider.script(*replies)
    tab = ChatSocket(conversation, conversation.owner)
    await tab.connect()
    await tab.drain(0.1)  # the page as it was, so the earlier reply is not taken for this one
    earlier = tab.page.last()
    await tab.say(text, f"key-{len(fake_provider.chat_requests)}")
    page = await tab.read_until(
        lambda page: page.last() is not earlier and page.last().status == expect, timeout=15
    )
    await tab.close()
    return fake_provider.chat_requests[-1].json, page


def _latest_reply(conversation) -> Message:
    return Message.objects.filter(conversation=conversation, role=Role.ASSISTANT).latest("id")


# --- Thinking, one switch per provider ---------------------------------------------------


async def test_dashscope_thinking_on_sends_enable_thinking_with_a_budget(on_profile, fake_provider):
    conversation = await on_profile("dashscope", "qwen-plus", thinking_enabled=True)
    body, _ = await _ask(conversation, fake_provider, Reply(reasoning="Hmm. ", content="Hi."))
    assert body["enable_thinking"] is True
    assert body["thinking_budget"] == profiles.DEFAULT_THINKING_BUDGET


async def test_dashscope_budget_is_the_conversations_own(on_profile, fake_provider):
    conversation = await on_profile(
        "dashscope", "qwen-plus", thinking_enabled=True, thinking_budget=500
    )
    body, _ = await _ask(conversation, fake_provider, Reply(content="Hi."))
    assert body["thinking_budget"] == 500


async def test_dashscope_thinking_off_says_so_and_sends_no_budget(on_profile, fake_provider):
    conversation = await on_profile("dashscope", "qwen-plus", thinking_budget=500)
    body, _ = await _ask(conversation, fake_provider, Reply(content="Hi."))
    assert body["enable_thinking"] is False
    assert "thinking_budget" not in body


@pytest.mark.parametrize(("switch", "kind"), [(True, "enabled"), (False, "disabled")])
async def test_zhipu_thinking_switch_maps_to_thinking_type(on_profile, fake_provider, switch, kind):
    conversation = await on_profile("zhipu", "glm-4.6", thinking_enabled=switch)
    body, _ = await _ask(conversation, fake_provider, Reply(content="Hi."))
    assert body["thinking"] == {"type": kind}
    assert "enable_thinking" not in body


async def test_a_model_that_cannot_think_gets_no_thinking_field(on_profile, fake_provider):
    conversation = await on_profile("zhipu", "glm-4-plus", thinking_enabled=True)
    body, _ = await _ask(conversation, fake_provider, Reply(content="Hi."))
    assert not {"thinking", "enable_thinking", "thinking_budget", "reasoning_effort"} & set(body)


async def test_deepseek_reasoner_thinks_without_a_parameter_and_keeps_reasoning_apart(
    on_profile, fake_provider
):
    conversation = await on_profile("deepseek", "deepseek-reasoner")
    body, page = await _ask(
        conversation, fake_provider, Reply(reasoning="Let me think. ", content="42.")
    )
    assert body["model"] == "deepseek-reasoner"
    assert not {"thinking", "enable_thinking", "reasoning_effort"} & set(body)
    reply = await database_sync_to_async(_latest_reply)(conversation)
    assert (reply.content, reply.reasoning) == ("42.", "Let me think. ")
    assert "Let me think." in page.last().html


async def test_deepseek_v4_is_switched_by_its_thinking_field(on_profile, fake_provider):
    """V4 thinks unless told not to (api-docs.deepseek.com/guides/thinking_mode)."""
    for thinking, expected in ((True, "enabled"), (False, "disabled")):
        conversation = await on_profile("deepseek", "deepseek-v4-flash", thinking_enabled=thinking)
        body, _ = await _ask(conversation, fake_provider, Reply(content="Hi."))
        assert body["thinking"] == {"type": expected}


async def test_openai_reasoning_model_gets_an_effort_and_max_completion_tokens(
    on_profile, fake_provider
):
    conversation = await on_profile(
        "openai", "o4-mini", thinking_budget=20_000, max_tokens=5000, temperature=0.3
    )
    body, _ = await _ask(conversation, fake_provider, Reply(content="Hi."))
    assert body["reasoning_effort"] == "high"
    assert body["max_completion_tokens"] == 5000
    assert not {"max_tokens", "temperature", "top_p"} & set(body)


async def test_local_thinking_model_uses_the_chat_template_switch(user, fake_provider):
    chat_model = await database_sync_to_async(ChatModelFactory)(
        name="qwen3-local", supports_thinking=True
    )
    conversation = await database_sync_to_async(ConversationFactory)(
        owner=user, chat_model=chat_model, thinking_enabled=True
    )
    body, _ = await _ask(conversation, fake_provider, Reply(content="Hi."))
    assert body["chat_template_kwargs"] == {"enable_thinking": True}


async def test_reasoning_is_never_sent_back_in_later_requests(on_profile, fake_provider):
    conversation = await on_profile("deepseek", "deepseek-reasoner")
    await _ask(conversation, fake_provider, Reply(reasoning="SECRET-THOUGHT ", content="One."))
    body, _ = await _ask(conversation, fake_provider, Reply(content="Two."), text="And then?")
    assert "SECRET-THOUGHT" not in json.dumps(body)
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert all(set(m) == {"role", "content"} for m in body["messages"])


# --- Parameters --------------------------------------------------------------------------


async def test_conversation_parameters_are_sent_as_set(on_profile, fake_provider):
    conversation = await on_profile(
        "deepseek",
        "deepseek-chat",
        temperature=0.2,
        top_p=0.9,
        max_tokens=300,
        stop=["END", "\n\n"],
    )
    body, _ = await _ask(conversation, fake_provider, Reply(content="Hi."))
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.2, 0.9, 300)
    assert body["stop"] == ["END", "\n\n"]


async def test_unset_parameters_are_left_to_the_model(on_profile, fake_provider):
    conversation = await on_profile("deepseek", "deepseek-chat")
    body, _ = await _ask(conversation, fake_provider, Reply(content="Hi."))
    assert not {"temperature", "top_p", "max_tokens", "stop"} & set(body)


# --- JSON mode ---------------------------------------------------------------------------


async def test_json_mode_asks_for_an_object_and_makes_the_messages_mention_json(
    on_profile, fake_provider
):
    conversation = await on_profile(
        "dashscope", "qwen-plus", json_mode=True, system_prompt="Be brief."
    )
    body, page = await _ask(conversation, fake_provider, Reply(content='{"a": [1, 2]}'))
    assert body["response_format"] == {"type": "json_object"}
    assert body["messages"][0] == {
        "role": "system",
        "content": f"Be brief.\n\n{profiles.JSON_INSTRUCTION}",
    }
    html = page.last().html
    assert "json-reply" in html and "Invalid JSON" not in html


async def test_json_mode_leaves_messages_that_already_mention_json_alone(on_profile, fake_provider):
    conversation = await on_profile("dashscope", "qwen-plus", json_mode=True)
    body, _ = await _ask(
        conversation, fake_provider, Reply(content="{}"), text="Answer as JSON please"
    )
    assert body["messages"] == [{"role": "user", "content": "Answer as JSON please"}]


async def test_invalid_json_reply_is_flagged_not_hidden(on_profile, fake_provider):
    conversation = await on_profile("dashscope", "qwen-plus", json_mode=True)
    _, page = await _ask(conversation, fake_provider, Reply(content='{"a": 1'))
    html = page.last().html
    assert "Invalid JSON" in html and "{&quot;a&quot;: 1" in html


async def test_json_mode_is_not_sent_to_a_model_without_it(on_profile, fake_provider):
    conversation = await on_profile("deepseek", "deepseek-reasoner", json_mode=True)
    body, _ = await _ask(conversation, fake_provider, Reply(content="Plain."))
    assert "response_format" not in body
    assert profiles.JSON_INSTRUCTION not in json.dumps(body)


# --- Usage in streams --------------------------------------------------------------------


async def test_server_that_never_sends_usage_is_learned_and_usage_estimated(
    conversation, fake_provider
):
    body, _ = await _ask(conversation, fake_provider, Reply(content="No usage.", usage=None))
    assert body["stream_options"] == {"include_usage": True}
    provider = await database_sync_to_async(Provider.objects.get)(slug="local")
    assert provider.stream_usage_supported is False
    reply = await database_sync_to_async(_latest_reply)(conversation)
    record = await database_sync_to_async(UsageRecord.objects.get)(message=reply)
    assert record.estimated and record.completion_tokens > 0
    # Later requests stop asking for a usage chunk.
    body, _ = await _ask(conversation, fake_provider, Reply(content="Again.", usage=None))
    assert "stream_options" not in body


# --- Rendering ---------------------------------------------------------------------------


def test_reasoning_time_is_shown_as_thought_for(db, conversation):
    reply = MessageFactory(
        conversation=conversation, role=Role.ASSISTANT, reasoning="Hmm.", reasoning_ms=12_400
    )
    assert "Thought for 12 s" in message_html(reply)


def test_valid_json_reply_is_pretty_printed(db, conversation):
    reply = MessageFactory(
        conversation=conversation,
        role=Role.ASSISTANT,
        content='{"b":{"c":1}}',
        context={"json_mode": True},
    )
    html = message_html(reply)
    assert "{\n  &quot;b&quot;: {\n    &quot;c&quot;: 1\n  }\n}" in html


def test_live_reply_times_the_reasoning_until_the_first_answer_token():
    from conversations.live.registry import LiveReply

    live = LiveReply(reply_id=1, uuid="u", conversation_uuid="c")
    assert live.reasoning_ms is None
    live.add_reasoning("Hmm")
    live.add_content("Answer")
    thought = live.reasoning_ms
    live.add_content(" more")
    assert thought is not None and live.reasoning_ms == thought
