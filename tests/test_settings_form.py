"""The conversation settings form: parameters checked against the model, switches offered
only where the model has them, and personas."""

import pytest
from django.urls import reverse

from conversations.models import ChatModel, Persona
from tests.factories import ChatModelFactory, ConversationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


def _save(client, conversation, **fields):
    data = {"model": conversation.chat_model_id, "system_prompt": "", "parameters": "1", **fields}
    return client.post(
        reverse("conversation_settings", args=[conversation.uuid]), data, HTTP_HX_REQUEST="true"
    )


def test_parameters_within_the_models_limits_are_saved(logged_in, conversation):
    response = _save(
        logged_in,
        conversation,
        temperature="0.7",
        top_p="0.9",
        max_tokens="1000",
        stop="END\r\n###\r\n",
    )
    assert b"Saved." in response.content
    conversation.refresh_from_db()
    assert (conversation.temperature, conversation.top_p, conversation.max_tokens) == (
        0.7,
        0.9,
        1000,
    )
    assert conversation.stop == ["END", "###"]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"temperature": "2.5"}, "Temperature must be between 0 and 2"),
        ({"top_p": "-0.1"}, "Top p must be between 0 and 1"),
        ({"max_tokens": "5000"}, "Max tokens must be between 1 and 4096"),
        ({"stop": "a\nb\nc\nd\ne"}, "at most 4 stop sequences"),
        ({"stop": "x" * 65}, "at most 64 characters"),
        ({"temperature": "warm"}, "temperature: Enter a number."),
    ],
)
def test_out_of_range_values_are_refused_with_a_clear_message(
    logged_in, conversation, fields, message
):
    response = _save(logged_in, conversation, **fields)
    assert message in response.content.decode()
    assert b"Saved." not in response.content
    conversation.refresh_from_db()
    assert conversation.temperature is None and conversation.stop == []


def test_thinking_budget_must_fit_the_model(logged_in, user):
    # DashScope honours a budget (a local server's template does not: none is offered).
    dashscope = ChatModel.objects.get(provider__slug="dashscope", name="qwen-plus").provider
    thinker = ChatModelFactory(provider=dashscope, name="thinker", supports_thinking=True)
    conversation = ConversationFactory(owner=user, chat_model=thinker)
    response = _save(logged_in, conversation, model="", thinking_budget="9000")
    assert "Thinking budget must be between 128 and 4096" in response.content.decode()


def test_thinking_and_json_switches_are_beside_the_composer_not_in_the_settings(
    logged_in, user, conversation
):
    plain = _save(logged_in, conversation).content.decode()
    assert 'name="thinking_enabled"' not in plain and 'name="json_mode"' not in plain
    capable = ConversationFactory(
        owner=user,
        chat_model=ChatModelFactory(name="capable", supports_thinking=True, supports_json=True),
    )
    page = _save(logged_in, capable).content.decode()
    assert 'name="thinking_enabled"' not in page and 'name="json_mode"' not in page
    chat = logged_in.get(reverse("conversation", args=[capable.uuid])).content.decode()
    assert 'id="switch-thinking"' in chat and 'id="switch-json"' in chat


def _settings_page(client, user, slug: str, name: str) -> str:
    chat_model = ChatModel.objects.get(provider__slug=slug, name=name)
    return _save(client, ConversationFactory(owner=user, chat_model=chat_model)).content.decode()


def test_each_parameter_is_offered_in_the_range_its_provider_takes(logged_in, user):
    glm = _settings_page(logged_in, user, "zhipu", "glm-4.6")
    assert "Temperature (0.01–1)" in glm and 'name="temperature" min="0.01" max="1"' in glm
    assert "Stop sequence (one line)" in glm
    # GLM's thinking is a switch (beside the composer) without a budget.
    assert 'name="thinking_budget"' not in glm
    reasoner = _settings_page(logged_in, user, "openai", "o4-mini")
    for refused in ("temperature", "top_p", "stop"):
        assert f'name="{refused}"' not in reasoner
    qwen = _settings_page(logged_in, user, "dashscope", "qwen-plus")
    assert 'name="thinking_budget"' in qwen


def test_the_recall_switch_is_offered_for_a_model_without_json_mode(logged_in, user):
    page = _settings_page(logged_in, user, "deepseek", "deepseek-reasoner")
    assert 'name="json_mode"' not in page and 'name="recall_enabled"' in page


def test_switches_a_model_cannot_honour_are_turned_off(logged_in, conversation):
    _save(logged_in, conversation, thinking_enabled="on", json_mode="on")
    conversation.refresh_from_db()
    assert not conversation.thinking_enabled and not conversation.json_mode


def test_a_form_without_parameters_keeps_them(logged_in, conversation):
    conversation.temperature = 0.4
    conversation.save()
    response = logged_in.post(
        reverse("conversation_settings", args=[conversation.uuid]),
        {"model": conversation.chat_model_id, "system_prompt": "Hi"},
        HTTP_HX_REQUEST="true",
    )
    assert b"Saved." in response.content
    conversation.refresh_from_db()
    assert conversation.temperature == 0.4


def test_switching_model_mid_conversation_checks_the_new_models_limits(
    logged_in, user, conversation
):
    small = ChatModelFactory(name="small", max_output=512)
    response = _save(logged_in, conversation, model=small.pk, max_tokens="1000")
    assert "Max tokens must be between 1 and 512" in response.content.decode()
    conversation.refresh_from_db()
    assert conversation.chat_model != small


def test_a_system_prompt_saved_as_persona_can_be_picked_later(logged_in, user, conversation):
    response = logged_in.post(
        reverse("persona_save", args=[conversation.uuid]),
        {"persona_name": "Pirate", "system_prompt": "Talk like a pirate."},
        HTTP_HX_REQUEST="true",
    )
    assert b"Saved." in response.content and b"Pirate" in response.content
    persona = Persona.objects.get(owner=user, name="Pirate")
    other = ConversationFactory(owner=user, chat_model=conversation.chat_model)
    _save(logged_in, other, persona=persona.pk, system_prompt="ignored")
    other.refresh_from_db()
    assert other.system_prompt == "Talk like a pirate."


def test_saving_a_persona_under_the_same_name_replaces_it(logged_in, user, conversation):
    url = reverse("persona_save", args=[conversation.uuid])
    logged_in.post(url, {"persona_name": "Tutor", "system_prompt": "v1"}, HTTP_HX_REQUEST="true")
    logged_in.post(url, {"persona_name": "Tutor", "system_prompt": "v2"}, HTTP_HX_REQUEST="true")
    assert list(Persona.objects.filter(owner=user).values_list("system_prompt", flat=True)) == [
        "v2"
    ]


def test_another_users_persona_cannot_be_picked(logged_in, other_user, conversation):
    theirs = Persona.objects.create(owner=other_user, name="Secret", system_prompt="Their prompt")
    _save(logged_in, conversation, persona=theirs.pk, system_prompt="Mine")
    conversation.refresh_from_db()
    assert conversation.system_prompt == "Mine"


def test_built_in_models_carry_their_capabilities():
    reasoner = ChatModel.objects.get(provider__slug="deepseek", name="deepseek-reasoner")
    assert reasoner.always_thinks and reasoner.supports_thinking and not reasoner.supports_json
