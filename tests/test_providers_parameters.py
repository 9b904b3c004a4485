"""conversations/providers/parameters.py: the body every preset model receives, for a reply
and for a background call, keeps to what its endpoint documents it accepts."""

import asyncio

import pytest

from conversations.models import ChatModel
from conversations.providers import parameters, presets, profiles, requests, transport
from conversations.providers.catalogue import Credentials
from tests.factories import ChatModelFactory, ConversationFactory
from tests.fake_provider import Reply

pytestmark = pytest.mark.django_db

PRESET_MODELS = [
    (provider.slug, model.name)
    for provider in presets.PROVIDER_PRESETS
    for model in provider.models
]
# The furthest a user can set each parameter in the settings form.
EXTREMES = [
    {"temperature": 0.0, "top_p": 0.0},
    {"temperature": 2.0, "top_p": 1.0},
]


def _preset(slug: str, name: str) -> ChatModel:
    return ChatModel.objects.get(provider__slug=slug, name=name)


def _local_thinker() -> ChatModel:
    return ChatModelFactory(name="qwen3-local", supports_thinking=True, supports_json=True)


def _reply_body(chat_model, conversation, fake_provider) -> dict:
    request = requests.reply_request(
        chat_model=chat_model,
        conversation=conversation,
        credentials=Credentials(api_key="test-key", base_url=fake_provider.base_url),
        messages=[{"role": "user", "content": "Hi"}],
    )

    async def drain():
        return [event async for event in transport.stream_chat(request)]

    fake_provider.script(Reply(content="Hi."))
    asyncio.run(drain())
    return fake_provider.chat_requests[-1].json


def _background_body(chat_model, fake_provider, settings, *, max_tokens: int) -> dict:
    settings.PROVIDER_CREDENTIALS = {
        **settings.PROVIDER_CREDENTIALS,
        chat_model.provider.slug: {"api_key": "test-key", "base_url": fake_provider.base_url},
    }
    request = requests.background_request(
        chat_model=chat_model, messages=[{"role": "user", "content": "Hi"}], max_tokens=max_tokens
    )
    fake_provider.script(Reply(content="A title"))
    asyncio.run(transport.complete_chat(request))
    return fake_provider.chat_requests[-1].json


def _keeps_to(body: dict, chat_model: ChatModel) -> None:
    rules = parameters.accepted(chat_model)
    for name in ("temperature", "top_p"):
        span = getattr(rules, name)
        if span is None:
            assert name not in body, (name, body)
        elif name in body:
            assert body[name] in span, (name, body[name], span)
    if rules.max_stop == 0:
        assert "stop" not in body
    else:
        assert len(body.get("stop", [])) <= rules.max_stop
    limit_fields = {"max_tokens", "max_completion_tokens"} & set(body)
    assert limit_fields <= {rules.output_limit}, body
    assert all(body[field] <= chat_model.max_output for field in limit_fields)


@pytest.mark.parametrize("extreme", EXTREMES, ids=["lowest", "highest"])
@pytest.mark.parametrize(("slug", "name"), [*PRESET_MODELS, ("local", "qwen3-local")])
def test_every_preset_models_reply_body_keeps_to_what_its_endpoint_takes(
    user, fake_provider, slug, name, extreme
):
    chat_model = _local_thinker() if slug == "local" else _preset(slug, name)
    conversation = ConversationFactory(
        owner=user,
        chat_model=chat_model,
        stop=["END", "###", "STOP", "--"],
        max_tokens=10**7,
        thinking_enabled=True,
        json_mode=True,
        **extreme,
    )
    body = _reply_body(chat_model, conversation, fake_provider)
    _keeps_to(body, chat_model)
    if not parameters.accepted(chat_model).json_while_thinking:
        thinking = chat_model.always_thinks or body.get("enable_thinking") is True
        assert not (thinking and "response_format" in body), body


@pytest.mark.parametrize(("slug", "name"), [*PRESET_MODELS, ("local", "qwen3-local")])
def test_every_preset_models_background_call_thinks_only_where_it_cannot_stop(
    fake_provider, settings, slug, name
):
    chat_model = _local_thinker() if slug == "local" else _preset(slug, name)
    body = _background_body(chat_model, fake_provider, settings, max_tokens=32)
    _keeps_to(body, chat_model)
    limit = body.get("max_tokens") or body.get("max_completion_tokens")
    if chat_model.always_thinks:
        # Room for the reasoning it cannot switch off, on top of the 32 tokens of answer.
        assert limit == min(32 + profiles.BACKGROUND_REASONING_ROOM, chat_model.max_output)
    else:
        assert limit == 32
        assert body.get("enable_thinking") is not True
        assert body.get("thinking", {}).get("type") != "enabled"
        assert body.get("chat_template_kwargs", {}).get("enable_thinking") is not True
    if chat_model.supports_thinking and not chat_model.always_thinks:
        switched_off = {
            "dashscope": ("enable_thinking", False),
            "zhipu": ("thinking", {"type": "disabled"}),
            "deepseek": ("thinking", {"type": "disabled"}),
            "local": ("chat_template_kwargs", {"enable_thinking": False}),
        }[slug]
        assert body[switched_off[0]] == switched_off[1]


def test_an_o_series_title_sends_no_temperature_and_caps_with_max_completion_tokens(
    fake_provider, settings
):
    body = _background_body(_preset("openai", "o4-mini"), fake_provider, settings, max_tokens=32)
    assert "temperature" not in body and "max_tokens" not in body
    assert body["max_completion_tokens"] == 32 + profiles.BACKGROUND_REASONING_ROOM
    assert body["reasoning_effort"] == "low"


def test_dashscope_json_mode_answers_without_thinking(user, fake_provider):
    chat_model = _preset("dashscope", "qwen-plus")
    conversation = ConversationFactory(
        owner=user, chat_model=chat_model, thinking_enabled=True, json_mode=True
    )
    body = _reply_body(chat_model, conversation, fake_provider)
    assert body["response_format"] == {"type": "json_object"}
    assert body["enable_thinking"] is False and "thinking_budget" not in body


def test_zhipu_gets_one_stop_word_and_a_temperature_above_zero(user, fake_provider):
    chat_model = _preset("zhipu", "glm-4.6")
    conversation = ConversationFactory(
        owner=user, chat_model=chat_model, temperature=0.0, stop=["END", "###"]
    )
    body = _reply_body(chat_model, conversation, fake_provider)
    assert body["temperature"] == 0.01
    assert body["stop"] == ["END"]


def test_span_clamps_into_its_open_and_closed_ends():
    span = parameters.Span(0, 2, high_open=True)
    assert (span.clamp(-1), span.clamp(0), span.clamp(2), span.clamp(1.5)) == (0, 0, 1.99, 1.5)
    assert 2 not in span and 1.99 in span
