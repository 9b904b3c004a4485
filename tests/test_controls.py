"""The chat's controls: the header's model switch, Think and JSON beside the composer, and
settings that offer only what the model's provider honours."""

import re

import pytest
from django.urls import reverse

from conversations import services
from conversations.models import ChatModel, Conversation
from conversations.providers import profiles
from tests.factories import ChatModelFactory, ConversationFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


def _chat_page(client, conversation) -> str:
    return client.get(reverse("conversation", args=[conversation.uuid])).content.decode()


def _settings_form(page: str) -> str:
    return re.search(r'<form id="conversation-settings".*?</form>', page, re.S).group(0)


def _switches(page: str) -> str:
    return re.search(r'<form id="composer-switches".*?</form>', page, re.S).group(0)


def _preset(slug: str, name: str) -> ChatModel:
    return ChatModel.objects.select_related("provider").get(provider__slug=slug, name=name)


# --- What each provider honours, derived from the request it is sent -------------------


def _request(chat_model: ChatModel, **settings) -> tuple[dict, profiles.Sampling]:
    conversation = Conversation(chat_model=chat_model, **settings)
    return profiles.request_fields(chat_model, conversation), profiles.sampling(
        chat_model, conversation
    )


def _every_chat_model() -> list[ChatModel]:
    local = ChatModelFactory(name="local-thinker", supports_thinking=True, supports_json=True)
    return [*ChatModel.objects.select_related("provider").exclude(pk=local.pk), local]


def test_a_thinking_budget_is_offered_exactly_where_it_changes_the_request():
    for chat_model in _every_chat_model():
        small, _ = _request(chat_model, thinking_enabled=True, thinking_budget=256)
        large, _ = _request(chat_model, thinking_enabled=True, thinking_budget=3000)
        offered = profiles.controls(chat_model).thinking_budget
        assert offered == (small != large), chat_model


def test_the_thinking_switch_is_offered_exactly_where_it_changes_the_request():
    for chat_model in _every_chat_model():
        on, _ = _request(chat_model, thinking_enabled=True)
        off, _ = _request(chat_model, thinking_enabled=False)
        assert profiles.controls(chat_model).thinking_switch == (on != off), chat_model


def test_sampling_parameters_are_offered_exactly_where_the_request_carries_them():
    for chat_model in _every_chat_model():
        _, sampling = _request(chat_model, temperature=0.5, top_p=0.5, stop=["END"])
        controls = profiles.controls(chat_model)
        assert (controls.temperature is not None) == (sampling.temperature is not None)
        assert (controls.top_p is not None) == (sampling.top_p is not None)
        assert bool(controls.max_stop) == bool(sampling.stop), chat_model


@pytest.mark.parametrize(
    ("slug", "name", "budget", "think", "json"),
    [
        ("zhipu", "glm-4.6", False, True, True),
        ("deepseek", "deepseek-v4-flash", False, True, True),
        ("deepseek", "deepseek-chat", False, False, True),
        ("deepseek", "deepseek-reasoner", False, False, False),
        ("dashscope", "qwen-plus", True, True, True),
        ("openai", "o4-mini", True, False, True),
        ("openai", "gpt-4.1", False, False, True),
    ],
)
def test_each_provider_is_offered_only_what_it_honours(
    logged_in, user, slug, name, budget, think, json
):
    chat_model = _preset(slug, name)
    page = _chat_page(logged_in, ConversationFactory(owner=user, chat_model=chat_model))
    settings_form, switches = _settings_form(page), _switches(page)
    assert ('name="thinking_budget"' in settings_form) is budget
    assert ('id="switch-thinking"' in switches) is think
    assert ('id="switch-json"' in switches) is json
    # The switches live beside the composer, not in Settings › Parameters.
    assert 'name="thinking_enabled"' not in settings_form
    assert 'name="json_mode"' not in settings_form


def test_a_budget_the_provider_ignores_is_not_kept(logged_in, user):
    conversation = ConversationFactory(owner=user, chat_model=_preset("zhipu", "glm-4.6"))
    services.conversation_update_settings(
        conversation=conversation,
        chat_model=conversation.chat_model,
        system_prompt="",
        parameters=services.GenerationSettings(thinking_budget=99_999),
    )
    conversation.refresh_from_db()
    assert conversation.thinking_budget is None


# --- Think and JSON beside the composer -----------------------------------------------


def _switch(client, conversation, **fields):
    url = reverse("conversation_switches", args=[conversation.uuid])
    return client.post(url, fields, HTTP_HX_REQUEST="true")


@pytest.fixture
def capable(user):
    chat_model = ChatModelFactory(name="capable", supports_thinking=True, supports_json=True)
    return ConversationFactory(owner=user, chat_model=chat_model)


def test_think_turns_on_and_off_and_shows_its_state(logged_in, capable):
    page = _switches(_chat_page(logged_in, capable))
    assert 'id="switch-thinking" name="thinking" value="on" aria-pressed="false"' in page
    response = _switch(logged_in, capable, thinking="on").content.decode()
    assert 'id="switch-thinking" name="thinking" value="off" aria-pressed="true"' in response
    assert 'id="context-gauge" hx-swap-oob="true"' in response
    capable.refresh_from_db()
    assert capable.thinking_enabled and not capable.json_mode
    _switch(logged_in, capable, thinking="off")
    capable.refresh_from_db()
    assert not capable.thinking_enabled


def test_json_mode_is_switched_and_the_next_request_asks_for_json(logged_in, capable):
    _switch(logged_in, capable, json_mode="on")
    capable.refresh_from_db()
    assert capable.json_mode and profiles.uses_json_mode(capable.chat_model, capable)
    assert 'id="switch-json" name="json_mode" value="off" aria-pressed="true"' in _chat_page(
        logged_in, capable
    )


def test_the_switch_reaches_the_request_body(logged_in, capable):
    _switch(logged_in, capable, thinking="on")
    capable.refresh_from_db()
    fields = profiles.request_fields(capable.chat_model, capable)
    assert fields == {"chat_template_kwargs": {"enable_thinking": True}}


def test_a_switch_the_model_cannot_honour_stays_off(logged_in, conversation):
    _switch(logged_in, conversation, thinking="on", json_mode="on")
    conversation.refresh_from_db()
    assert not conversation.thinking_enabled and not conversation.json_mode
    assert 'class="switch-button"' not in _chat_page(logged_in, conversation)


def test_saving_the_settings_leaves_the_switches_as_they_are(logged_in, capable):
    _switch(logged_in, capable, thinking="on", json_mode="on")
    url = reverse("conversation_settings", args=[capable.uuid])
    response = logged_in.post(
        url, {"system_prompt": "Be brief.", "parameters": "1"}, HTTP_HX_REQUEST="true"
    )
    assert b"Saved." in response.content and b'data-saved="true"' in response.content
    capable.refresh_from_db()
    assert capable.thinking_enabled and capable.json_mode
    assert capable.system_prompt == "Be brief."


def test_a_saved_persona_does_not_close_the_settings(logged_in, conversation):
    response = logged_in.post(
        reverse("persona_save", args=[conversation.uuid]),
        {"persona_name": "Tutor", "system_prompt": "Teach."},
        HTTP_HX_REQUEST="true",
    )
    assert b"Saved." in response.content and b"data-saved" not in response.content


def test_another_users_switches_are_404(client, other_user, capable):
    client.force_login(other_user)
    assert _switch(client, capable, thinking="on").status_code == 404
    capable.refresh_from_db()
    assert not capable.thinking_enabled


# --- The header's model -------------------------------------------------------------------


def test_the_header_shows_the_provider_and_model_and_offers_the_switch(logged_in, conversation):
    page = _chat_page(logged_in, conversation)
    header = re.search(r'<header class="chat-header">.*?id="model-switch".*?</form>', page, re.S)
    assert header, "the model switch is in the header"
    selected = f'<option value="{conversation.chat_model_id}" selected>Local server · fake-model'
    assert selected in header.group(0)


def _switch_model(client, conversation, model):
    url = reverse("conversation_model", args=[conversation.uuid])
    return client.post(url, {"model": model}, HTTP_HX_REQUEST="true")


def test_switching_the_model_updates_the_header_settings_switches_and_gauge(
    logged_in, conversation
):
    wide = ChatModelFactory(
        name="wide-thinker", context_window=128_000, supports_thinking=True, supports_json=True
    )
    response = _switch_model(logged_in, conversation, wide.pk)
    html = response.content.decode()
    assert response.status_code == 200
    conversation.refresh_from_db()
    assert conversation.chat_model == wide
    assert f'<option value="{wide.pk}" selected>' in html
    assert re.search(r'<form id="conversation-settings"[^>]*hx-swap-oob="true"', html)
    assert re.search(r'<form id="composer-switches"[^>]*hx-swap-oob="true"', html)
    assert 'id="switch-thinking"' in html, "the new model's switches come with it"
    assert re.search(r'id="context-gauge" hx-swap-oob="true"[^>]*data-window="128000"', html)


def test_a_model_that_is_not_available_is_refused_and_nothing_changes(logged_in, conversation):
    before = conversation.chat_model_id
    html = _switch_model(logged_in, conversation, 999_999).content.decode()
    assert "Choose one of the available models." in html
    assert "hx-swap-oob" not in html
    conversation.refresh_from_db()
    assert conversation.chat_model_id == before


def test_another_users_model_is_not_switched(client, other_user, conversation):
    client.force_login(other_user)
    other = ChatModelFactory(name="second")
    assert _switch_model(client, conversation, other.pk).status_code == 404
    conversation.refresh_from_db()
    assert conversation.chat_model_id != other.pk


def test_a_new_chat_starts_on_the_model_switched_to_last(logged_in, user, conversation):
    other = ChatModelFactory(name="second")
    ConversationFactory(owner=user, chat_model=conversation.chat_model)  # more recent
    _switch_model(logged_in, conversation, other.pk)
    home = logged_in.get(reverse("home")).content.decode()
    assert f'<option value="{other.pk}" selected>' in home


def test_the_settings_no_longer_switch_the_model_but_keep_it(logged_in, conversation):
    """The header is where the model changes: a Save without one keeps the chat's."""
    assert 'name="model"' not in _settings_form(_chat_page(logged_in, conversation))
    response = logged_in.post(
        reverse("conversation_settings", args=[conversation.uuid]),
        {"system_prompt": "Hi", "parameters": "1"},
        HTTP_HX_REQUEST="true",
    )
    assert b"Saved." in response.content
    conversation.refresh_from_db()
    assert conversation.chat_model is not None and conversation.system_prompt == "Hi"


def test_a_chat_on_a_model_no_longer_offered_says_so_in_the_header(logged_in, conversation):
    ChatModel.objects.filter(pk=conversation.chat_model_id).update(is_active=False)
    ChatModelFactory(name="still-offered")
    page = _chat_page(logged_in, conversation)
    header = re.search(r'<form id="model-switch".*?</form>', page, re.S).group(0)
    gone = '<option value="" selected disabled>Local server · fake-model (no longer offered)'
    assert gone in header and header.count(" selected") == 1


def test_think_says_when_json_mode_turns_it_off(logged_in, user):
    qwen = ConversationFactory(
        owner=user, chat_model=_preset("dashscope", "qwen-plus"), thinking_enabled=True
    )
    note = "with JSON mode on, replies answer without thinking"
    switches = _switches(_chat_page(logged_in, qwen))
    assert f'title="This provider cannot think in JSON mode: {note}' in switches
    assert 'class="switch-note' not in switches
    qwen.json_mode = True
    qwen.save()
    assert 'class="switch-note muted"' in _switches(_chat_page(logged_in, qwen))
