"""Pages: login, sign-up, the chat page, ownership, and secrets that never show."""

import pytest
from django.urls import reverse

from conversations.models import Conversation
from tests.factories import ConversationFactory, MessageFactory, UserFactory, thread

SECRET_KEY_VALUE = "sk-live-NEVER-SHOW-THIS-1234567890"


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


@pytest.mark.django_db
def test_login_page_is_served(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert b'name="username"' in response.content


@pytest.mark.django_db
def test_pages_require_login(client, conversation):
    for url in (reverse("home"), reverse("conversation", args=[conversation.uuid])):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.django_db
def test_first_sign_up_becomes_admin_and_is_logged_in(client):
    response = client.post(
        reverse("signup"),
        {
            "username": "founder",
            "password1": "a long passphrase 9",
            "password2": "a long passphrase 9",
        },
    )
    assert response.status_code == 302
    founder = UserFactory._meta.model.objects.get(username="founder")
    assert founder.is_superuser
    assert client.get(reverse("home")).status_code == 200


@pytest.mark.django_db
def test_sign_up_can_be_switched_off(client, settings):
    settings.SIGNUP_ENABLED = False
    assert client.get(reverse("signup")).status_code == 404
    assert b"Sign up" not in client.get(reverse("login")).content


@pytest.mark.django_db
def test_chat_page_shows_the_thread_with_the_ui_contract(logged_in, conversation):
    thread(conversation, "What is 2+2?", "**4**")
    response = logged_in.get(reverse("conversation", args=[conversation.uuid]))
    html = response.content.decode()
    assert 'form id="composer"' in html and 'textarea name="message"' in html
    assert 'id="stop"' in html and 'id="new-conversation"' in html
    assert 'select name="model"' in html
    assert f'ws-connect="/ws/c/{conversation.uuid}/"' in html
    assert 'data-role="user"' in html and 'data-status="complete"' in html
    assert "<strong>4</strong>" in html


@pytest.mark.django_db
def test_another_users_conversation_is_404(logged_in, other_user, chat_model):
    theirs = ConversationFactory(owner=other_user, chat_model=chat_model)
    assert logged_in.get(reverse("conversation", args=[theirs.uuid])).status_code == 404
    response = logged_in.post(
        reverse("conversation_settings", args=[theirs.uuid]),
        {"model": chat_model.pk, "system_prompt": "hijack"},
    )
    assert response.status_code == 404
    theirs.refresh_from_db()
    assert theirs.system_prompt == ""


@pytest.mark.django_db
def test_sidebar_lists_only_my_conversations_most_recent_first(logged_in, user, other_user):
    older = ConversationFactory(owner=user, title="Older")
    newer = ConversationFactory(owner=user, title="Newer")
    ConversationFactory(owner=other_user, title="Not mine")
    MessageFactory(conversation=newer)
    Conversation.objects.filter(pk=newer.pk).update(updated_at=older.updated_at.replace(year=2100))
    html = logged_in.get(reverse("home")).content.decode()
    assert html.index("Newer") < html.index("Older")
    assert "Not mine" not in html


@pytest.mark.django_db
def test_a_new_chat_starts_on_the_model_last_used(logged_in, user, chat_model):
    from tests.factories import ChatModelFactory

    other = ChatModelFactory(provider=chat_model.provider, name="second-model")
    assert (
        f'<option value="{chat_model.pk}" selected>'
        in logged_in.get(reverse("home")).content.decode()
    )
    ConversationFactory(owner=user, chat_model=other)
    assert (
        f'<option value="{other.pk}" selected>' in logged_in.get(reverse("home")).content.decode()
    )
    # A model no longer offered: the default again.
    other.is_active = False
    other.save()
    assert (
        f'<option value="{chat_model.pk}" selected>'
        in logged_in.get(reverse("home")).content.decode()
    )


@pytest.mark.django_db(transaction=True)
def test_new_conversation_with_an_unavailable_model_is_refused_clearly(logged_in):
    response = logged_in.post(reverse("conversation_new"), {"model": 999999, "message": "hi"})
    assert response.status_code == 400
    page = response.content.decode()
    assert "Choose one of the available models" in page
    assert ">hi</textarea>" in page
    assert not Conversation.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_first_message_refused_by_the_budget_creates_nothing_and_keeps_the_text(
    logged_in, user, chat_model
):
    from tests.factories import UsageBudgetFactory, UsageRecordFactory

    UsageBudgetFactory(token_limit=10)
    UsageRecordFactory(user=user, prompt_tokens=10, completion_tokens=0)
    typed = "A question I <b>typed</b> with care"
    response = logged_in.post(
        reverse("conversation_new"), {"model": chat_model.pk, "message": typed}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "budget" in page
    assert ">A question I &lt;b&gt;typed&lt;/b&gt; with care</textarea>" in page
    assert f'<option value="{chat_model.pk}" selected>' in page
    assert not Conversation.objects.exists()


@pytest.mark.django_db
def test_settings_switch_the_model_and_system_prompt(logged_in, conversation):
    from tests.factories import ChatModelFactory

    other_model = ChatModelFactory(name="fake-reasoner")
    response = logged_in.post(
        reverse("conversation_settings", args=[conversation.uuid]),
        {"model": other_model.pk, "system_prompt": "Answer in French."},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200 and b"Saved." in response.content
    conversation.refresh_from_db()
    assert conversation.chat_model == other_model
    assert conversation.system_prompt == "Answer in French."


@pytest.mark.django_db
def test_an_api_key_from_the_environment_appears_on_no_page(client, settings, chat_model):
    settings.PROVIDER_CREDENTIALS = {
        **settings.PROVIDER_CREDENTIALS,
        "openai": {"api_key": SECRET_KEY_VALUE, "base_url": ""},
    }
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    conversation = ConversationFactory(owner=admin, chat_model=chat_model)
    thread(conversation, "hello", "world")
    client.force_login(admin)
    urls = [
        reverse("home"),
        reverse("conversation", args=[conversation.uuid]),
        reverse("admin:index"),
        reverse("admin:conversations_provider_changelist"),
        reverse("admin:conversations_provider_change", args=[chat_model.provider.pk]),
        reverse("admin:conversations_chatmodel_changelist"),
        reverse("admin:conversations_conversation_change", args=[conversation.pk]),
        reverse("admin:conversations_message_changelist"),
        reverse("admin:conversations_usagerecord_changelist"),
        reverse("admin:conversations_conversationsummary_changelist"),
    ]
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
        assert SECRET_KEY_VALUE.encode() not in response.content, url


@pytest.mark.django_db
def test_api_key_is_masked_in_log_lines(settings, caplog):
    import logging

    from chatsite.logging import MaskSecretsFilter

    settings.PROVIDER_CREDENTIALS = {"openai": {"api_key": SECRET_KEY_VALUE, "base_url": ""}}
    record = logging.LogRecord(
        "x", logging.ERROR, "f", 1, "calling with %s", (SECRET_KEY_VALUE,), None
    )
    MaskSecretsFilter().filter(record)
    assert SECRET_KEY_VALUE not in record.getMessage()
    assert "***" in record.getMessage()


@pytest.mark.django_db
def test_first_message_names_an_untitled_conversation(user, chat_model):
    from conversations import services

    conversation = ConversationFactory(owner=user, chat_model=chat_model, title="")
    services.message_send(conversation=conversation, content="How do foxes hunt in snow?\nDetails")
    conversation.refresh_from_db()
    assert conversation.title == "How do foxes hunt in snow?"


@pytest.mark.django_db
def test_models_listed_by_the_endpoint_join_the_catalogue(fake_provider):
    from conversations.models import ChatModel, Provider
    from conversations.providers.discovery import discover_models

    fake_provider.models = ["fake-model", "fake-reasoner"]
    local = Provider.objects.get(slug="local")
    added = discover_models(local)
    assert sorted(m.name for m in added) == ["fake-model", "fake-reasoner"]
    assert all(m.discovered for m in added)
    assert discover_models(local) == [], "known models are left as they are"
    assert ChatModel.objects.filter(provider=local).count() == 2


@pytest.mark.django_db
def test_admin_action_discovers_models(client, fake_provider):
    from conversations.models import ChatModel, Provider

    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(admin)
    local = Provider.objects.get(slug="local")
    response = client.post(
        reverse("admin:conversations_provider_changelist"),
        {"action": "discover", "_selected_action": [local.pk]},
        follow=True,
    )
    assert b"fake-model" in response.content
    assert ChatModel.objects.filter(provider=local, name="fake-model").exists()


@pytest.mark.django_db
def test_changing_the_password_signs_out_other_sessions_and_keeps_this_one(user):
    from django.test import Client

    here, elsewhere = Client(), Client()
    for browser in (here, elsewhere):
        browser.login(username=user.username, password="correct horse battery")
    page = here.get(reverse("password_change"))
    assert page.status_code == 200 and 'id="password-form"' in page.content.decode()
    response = here.post(
        reverse("password_change"),
        {
            "old_password": "correct horse battery",
            "new_password1": "a much newer secret 42",
            "new_password2": "a much newer secret 42",
        },
        follow=True,
    )
    assert "Password changed" in response.content.decode()
    user.refresh_from_db()
    assert user.check_password("a much newer secret 42")
    assert here.get(reverse("home")).status_code == 200
    signed_out = elsewhere.get(reverse("home"))
    assert signed_out.status_code == 302 and reverse("login") in signed_out["Location"]


@pytest.mark.django_db
def test_a_wrong_old_password_changes_nothing_and_says_so(logged_in, user):
    response = logged_in.post(
        reverse("password_change"),
        {
            "old_password": "not it",
            "new_password1": "a much newer secret 42",
            "new_password2": "a much newer secret 42",
        },
    )
    assert response.status_code == 200
    assert "Your old password was entered incorrectly" in response.content.decode()
    user.refresh_from_db()
    assert user.check_password("correct horse battery")
