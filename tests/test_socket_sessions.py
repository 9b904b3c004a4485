"""A chat socket obeys its session: after a logout in another tab, a password change or a
deactivation, nothing it is asked reaches a provider, and it closes with 4401 at once
(socket_sessions.py). On a running daphne with the site's own cookie; the page's side is
in test_browser.py."""

import asyncio
import os

import aiohttp
import pytest
from channels.layers import channel_layers
from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.db import connection
from django.test import Client

from conversations.consumers import CLOSE_SIGNED_OUT
from conversations.models import Message
from tests.factories import ChatModelFactory, ConversationFactory, UserFactory
from tests.fake_provider import Reply
from tests.wsclient import LiveSocket

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _same_layer_as_the_server(settings):
    """This process's signals reach the server's sockets through the Redis it uses."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14")],
                "prefix": os.environ.get("CHANNELS_PREFIX", "chatsite"),
            },
        }
    }
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture
def conversation(db):
    return ConversationFactory(owner=UserFactory(), chat_model=ChatModelFactory())


async def _closed_with(socket: LiveSocket, timeout: float = 10) -> int | None:
    while True:
        frame = await socket.ws.receive(timeout=timeout)
        if frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED):
            return socket.ws.close_code


async def _in_a_thread(act) -> None:
    """`act` on a thread of its own, as another request would run, closing its connection."""

    def run():
        try:
            act()
        finally:
            connection.close()

    await asyncio.to_thread(run)


async def _live(socket: LiveSocket) -> None:
    """The socket has joined its user's group: it answered a frame (an unknown action)."""
    await socket.ws.send_json({"action": "are-you-there"})
    await socket.read_until(lambda page: any("Unknown action" in n for n in page.notices))


def _log_out(cookie: str) -> None:
    """Another tab of the same browser signs out (the same session)."""
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = cookie
    assert client.post("/accounts/logout/").status_code == 302


def _change_password(user_id: int) -> None:
    user = User.objects.get(pk=user_id)
    user.set_password("a brand new passphrase")
    user.save()


def _deactivate(user_id: int) -> None:
    """As the admin's change form does it: a save of the user."""
    user = User.objects.get(pk=user_id)
    user.is_active = False
    user.save()


@pytest.mark.parametrize("revoke", ["log_out", "change_password", "deactivate"])
def test_the_socket_closes_at_once_when_its_session_ends(daphne_server, conversation, revoke):
    socket = LiveSocket(daphne_server, conversation)
    owner = conversation.owner_id
    act = {
        "log_out": lambda: _log_out(socket.cookie),
        "change_password": lambda: _change_password(owner),
        "deactivate": lambda: _deactivate(owner),
    }[revoke]

    async def scenario():
        async with socket:
            await _live(socket)
            await _in_a_thread(act)
            return await _closed_with(socket)

    assert asyncio.run(scenario()) == CLOSE_SIGNED_OUT


@pytest.mark.parametrize("revoke", ["sessions_deleted", "deactivated_by_update"])
def test_a_send_after_the_session_ended_reaches_nothing(
    daphne_server, conversation, fake_provider, revoke
):
    """Ended without a signal (an admin's bulk delete, a queryset update): the send's own
    check stops it."""
    socket = LiveSocket(daphne_server, conversation)
    fake_provider.script(Reply(content="Should never be asked for."))

    def act():
        if revoke == "sessions_deleted":
            Session.objects.all().delete()
        else:
            User.objects.filter(pk=conversation.owner_id).update(is_active=False)

    async def scenario():
        async with socket:
            await _live(socket)
            await _in_a_thread(act)
            await socket.say("Am I still here?")
            return await _closed_with(socket)

    assert asyncio.run(scenario()) == CLOSE_SIGNED_OUT
    assert not Message.objects.exists()
    assert fake_provider.chat_requests == []
