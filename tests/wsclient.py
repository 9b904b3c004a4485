"""Helpers for driving the chat consumer: through Channels' WebsocketCommunicator, or over a
real socket to a running daphne."""

import time
from importlib import import_module

import aiohttp
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from conversations.routing import websocket_urlpatterns
from tests.page_model import PageModel


class ChatSocket:
    """One browser tab's socket, with the page it would show."""

    def __init__(self, conversation, user) -> None:
        app = URLRouter(websocket_urlpatterns)
        self.communicator = WebsocketCommunicator(app, f"/ws/c/{conversation.uuid}/")
        self.communicator.scope["user"] = user
        self.user = user
        self.page = PageModel()

    async def connect(self, *, last: str = "", status: str = "") -> bool:
        """Open the socket and sync as a page whose last message is `last`, shown in
        `status` ("": as a page that does not say)."""
        if "session" not in self.communicator.scope:
            # A real session, as the site's stack would give it: the socket re-reads it.
            key = await database_sync_to_async(session_cookie)(self.user)
            store = import_module(settings.SESSION_ENGINE).SessionStore(key)
            self.communicator.scope["session"] = store
        connected, _ = await self.communicator.connect()
        if connected:
            sync = {"action": "sync", "last": last, **({"status": status} if status else {})}
            await self.communicator.send_json_to(sync)
        return connected

    async def send(self, **data) -> None:
        await self.communicator.send_json_to(data)

    def heard(self, text: str) -> bool:
        """Some frame applied so far holds `text`."""
        return any(text in frame for frame in self.page.frames)

    async def say(self, text: str, key: str) -> None:
        await self.send(action="send", message=text, idempotency_key=key)

    async def read_until(self, predicate, timeout: float = 10.0) -> PageModel:
        """Apply frames until `predicate(page)` holds."""
        deadline = time.monotonic() + timeout
        while not predicate(self.page):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out; last frames: {self.page.frames[-3:]}")
            await self._apply_next(min(remaining, 0.1))
        return self.page

    async def _apply_next(self, wait: float) -> None:
        # receive_from() cancels the application when it times out, so look first.
        if not await self.communicator.receive_nothing(timeout=wait, interval=0.005):
            self.page.apply(await self.communicator.receive_from(timeout=5))

    async def read_until_text(self, chars: int, timeout: float = 10.0) -> PageModel:
        """Apply frames until the last reply shows more than `chars` characters."""
        return await self.read_until(
            lambda page: page.last() is not None and len(page.last().text) > chars, timeout
        )

    async def read_until_reply(self, status: str, timeout: float = 10.0) -> PageModel:
        return await self.read_until(
            lambda page: page.last() is not None and page.last().status == status, timeout
        )

    async def drain(self, seconds: float = 0.3) -> None:
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            await self._apply_next(min(remaining, 0.1))

    async def close(self) -> None:
        await self.communicator.disconnect()


class PageSocket(ChatSocket):
    """The socket of a page without a chat (/ws/u/): its user's events only."""

    def __init__(self, user, *, path: str = "/ws/u/") -> None:
        self.communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
        self.communicator.scope["user"] = user
        self.user = user
        self.page = PageModel()


async def tab_streaming(conversation, question: str = "Question", *, chars: int = 6) -> ChatSocket:
    """The owner's tab, having asked `question`, once the reply shows more than `chars`
    characters (the fake provider's script decides the reply)."""
    tab = ChatSocket(conversation, conversation.owner)
    await tab.connect()
    await tab.say(question, "k1")
    await tab.read_until_text(chars)
    return tab


def session_cookie(user) -> str:
    """The value of a session cookie signed in as `user`, as the browser would hold it."""
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


class LiveSocket:
    """A chat socket on a running daphne, opened as a browser on the site opens it: the
    owner's session cookie and the site's Origin. Keeps the page it would show."""

    def __init__(self, server, conversation, *, autoping: bool = True) -> None:
        self.cookie = session_cookie(conversation.owner)
        self.url = f"ws://127.0.0.1:{server.port}/ws/c/{conversation.uuid}/"
        self.origin = server.url
        self.autoping = autoping
        self.page = PageModel()

    async def open(self) -> None:
        self.session = aiohttp.ClientSession(cookies={settings.SESSION_COOKIE_NAME: self.cookie})
        self.ws = await self.session.ws_connect(
            self.url, origin=self.origin, max_msg_size=0, autoping=self.autoping
        )
        await self.ws.send_json({"action": "sync", "last": ""})

    async def say(self, text: str, key: str | None = None) -> None:
        await self.ws.send_json({"action": "send", "message": text, "idempotency_key": key or text})

    async def read_until(self, predicate, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self.page):
            frame = await self.ws.receive(timeout=max(deadline - time.monotonic(), 0.01))
            self.page.apply(frame.data)

    async def close(self) -> None:
        await self.ws.close()
        await self.session.close()

    async def __aenter__(self) -> "LiveSocket":
        await self.open()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()
