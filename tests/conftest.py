"""Shared fixtures: the fake provider on loopback, fast streaming settings, users."""

import pytest
from channels.layers import channel_layers

from conversations.hub import hub
from tests.factories import ChatModelFactory, ConversationFactory, UserFactory
from tests.fake_provider import FakeProvider


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    # Generators query from worker threads; persistent connections there would outlive the
    # test and block dropping the test database.
    from django.conf import settings

    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0


@pytest.fixture(scope="session")
def fake_provider_server():
    with FakeProvider() as server:
        yield server


@pytest.fixture
def fake_provider(fake_provider_server):
    fake_provider_server.reset()
    yield fake_provider_server
    fake_provider_server.reset()


@pytest.fixture(autouse=True)
def _provider_settings(settings, fake_provider_server):
    """The `local` provider points at the fake server; streams run with short intervals."""
    settings.PROVIDER_CREDENTIALS = {
        **settings.PROVIDER_CREDENTIALS,
        "local": {"api_key": "test-key", "base_url": fake_provider_server.base_url},
    }
    settings.PROVIDER_MAX_RETRIES = 2
    settings.PROVIDER_READ_TIMEOUT = 5.0
    settings.STREAM_SAVE_INTERVAL = 0.2
    settings.STREAM_STALE_AFTER = 3.0


@pytest.fixture(autouse=True)
def _fresh_hub():
    """Each test has its own event loop: drop everything bound to the previous one."""
    hub.reset()
    channel_layers.backends.clear()
    yield
    hub.reset()
    channel_layers.backends.clear()


@pytest.fixture
def user(db):
    return UserFactory(username="alice")


@pytest.fixture
def other_user(db):
    return UserFactory(username="mallory")


@pytest.fixture
def chat_model(db):
    return ChatModelFactory()


@pytest.fixture
def conversation(user, chat_model):
    return ConversationFactory(owner=user, chat_model=chat_model)
