"""With no provider to talk to, the page says exactly what to do, and Send waits."""

import re

import pytest

from tests.factories import ChatModelFactory, UserFactory

pytestmark = pytest.mark.django_db

NOTHING_SET = {"api_key": "", "base_url": ""}


@pytest.fixture(autouse=True)
def _no_earlier_looks():
    """What this process found when it asked a provider outlives a test otherwise."""
    from conversations.providers import discovery

    discovery.forget_looks()
    yield
    discovery.forget_looks()


@pytest.fixture
def no_provider(settings):
    settings.PROVIDER_CREDENTIALS = dict.fromkeys(settings.PROVIDER_ENV_PREFIXES, NOTHING_SET)


def _page(client, user, url="/") -> str:
    client.force_login(user)
    return client.get(url).content.decode()


def _send_button(page: str) -> str:
    return re.search(r'<button type="submit" id="send"[^>]*>', page).group(0)


def test_with_no_provider_the_new_chat_page_says_which_variable_where_and_to_restart(
    client, no_provider, user
):
    page = _page(client, user)
    setup = re.search(r'<section[^>]*id="provider-setup".*?</section>', page, re.S).group(0)
    assert "No model provider is set up yet" in setup
    for variable in ("DEEPSEEK_API_KEY", "DASHSCOPE_API_KEY", "ZHIPUAI_API_KEY", "OPENAI_API_KEY"):
        assert variable in setup
    assert "LOCAL_BASE_URL=http://127.0.0.1:11434/v1" in setup
    assert ".env" in setup and "make run" in setup
    assert "disabled" in _send_button(page)
    assert 'aria-describedby="provider-setup"' in _send_button(page)
    assert "/admin/conversations/provider/" not in setup, "the admin link is for staff"


def test_an_administrator_also_gets_a_link_to_the_providers(client, no_provider):
    page = _page(client, UserFactory(is_staff=True, is_superuser=True))
    assert 'href="/admin/conversations/provider/"' in page


def test_a_local_server_set_up_without_models_is_told_apart(client, settings, user):
    # The autouse fixture points the local provider at the fake server; it has no model.
    settings.PROVIDER_CREDENTIALS = {
        **dict.fromkeys(settings.PROVIDER_ENV_PREFIXES, NOTHING_SET),
        "local": {"api_key": "", "base_url": "http://127.0.0.1:9/v1"},
    }
    page = _page(client, user)
    assert "No model to chat with" in page and "Local server is set up" in page
    assert "disabled" in _send_button(page)


def test_with_a_model_to_talk_to_there_is_no_setup_notice_and_send_works(client, user):
    ChatModelFactory()
    page = _page(client, user)
    assert 'id="provider-setup"' not in page
    assert "disabled" not in _send_button(page)


# --- a configured provider that cannot be reached --------------------------------------


@pytest.fixture
def unreachable_local(settings):
    """The local provider set up at an address nothing listens on."""
    from tests.live_server import free_port

    settings.PROVIDER_CREDENTIALS = {
        **settings.PROVIDER_CREDENTIALS,
        "local": {"api_key": "", "base_url": f"http://127.0.0.1:{free_port()}/v1"},
    }
    return ChatModelFactory()


def test_start_up_says_a_configured_provider_cannot_be_reached(unreachable_local):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("discover_models", timeout=2, stdout=out)
    assert "Local server cannot be reached" in out.getvalue()
    assert "its replies will fail until it answers" in out.getvalue()


def test_the_model_picker_marks_a_provider_that_was_unreachable_at_the_last_look(
    client, user, unreachable_local
):
    from conversations.providers import discovery

    assert discovery.check_provider(unreachable_local.provider, timeout=2).problem == "unreachable"
    option = re.search(r"<option[^>]*>Local server[^<]*</option>", _page(client, user)).group(0)
    assert "(unreachable at the last look)" in option


def test_a_provider_that_answers_is_not_marked(client, user, fake_provider):
    from conversations.providers import discovery

    chat_model = ChatModelFactory()
    assert discovery.check_provider(chat_model.provider, timeout=5).problem == ""
    assert "at the last look" not in _page(client, user)
