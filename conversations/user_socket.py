"""A user's event stream on every socket of theirs (conversations/user_events.py).

A chat page's socket (consumers.py) carries it beside its conversation; a page without a
chat (the new-chat page, archived chats, search, usage) opens the socket of this module at
/ws/u/, which carries nothing else. Either way the socket joins the user's group and turns
each event into the pieces of UI its page shows (conversations/user_pushes.py), in the
page's language.
"""

import asyncio
from types import SimpleNamespace
from typing import cast

from channels.generic.websocket import AsyncWebsocketConsumer
from django.contrib.auth.models import User
from django.http import HttpRequest
from django.http.cookie import parse_cookie
from django.utils import translation

from conversations import selectors, user_events, user_pushes
from conversations.frames import BadFrame, read_frame
from conversations.live.threads import on_worker_thread
from conversations.models import Conversation

CLOSE_FORBIDDEN = 4403
# The session that opened the socket no longer signs its user in: the page says so.
CLOSE_SIGNED_OUT = 4401


def socket_language(scope) -> str:
    """The language LocaleMiddleware would pick for the page (its cookie, else the browser's
    Accept-Language): Channels runs no Django middleware, and pushes must match the page."""
    headers = dict(scope.get("headers") or ())
    request = SimpleNamespace(
        COOKIES=parse_cookie(headers.get(b"cookie", b"").decode("latin-1")),
        META={"HTTP_ACCEPT_LANGUAGE": headers.get(b"accept-language", b"").decode("latin-1")},
    )
    # Duck-typed: get_language_from_request reads only these two of a request.
    return translation.get_language_from_request(cast(HttpRequest, request))


async def session_over(session_key: str | None, user_id: int, event: dict) -> bool:
    """A session check (socket_sessions): the socket's session no longer signs its user in
    (`ended` names it, or it is read afresh: two queries)."""
    if event.get("ended") and event["ended"] == session_key:
        return True
    return await on_worker_thread(selectors.session_user_id)(session_key) != user_id


class UserEventsConsumer(AsyncWebsocketConsumer):
    """Handlers of the user's events, for a socket that sets `user`, `language` and
    `on_screen` (the conversation its page shows, or None) and joins the group."""

    user: User
    language: str
    on_screen: Conversation | None
    # The page lists the archived chats too (the archived page's socket says so).
    archived_shown = False

    async def conversation_changed(self, event: dict) -> None:
        def render() -> str:
            with translation.override(self.language):
                return user_pushes.conversation_change_html(
                    self.user,
                    event["conversation"],
                    event["change"],
                    self.on_screen,
                    archived_shown=self.archived_shown,
                )

        html = await on_worker_thread(render)()
        if html:
            await self.send(text_data=html)

    async def summary_changed(self, event: dict) -> None:
        on_screen = self.on_screen
        if on_screen is None or str(on_screen.uuid) != event["conversation"]:
            return

        def render() -> str:
            with translation.override(self.language):
                return user_pushes.summary_change_html(on_screen, event.get("summary"))

        await self.send(text_data=await on_worker_thread(render)())

    async def controls_changed(self, event: dict) -> None:
        """The chat on screen was switched to another model, or Think or JSON, elsewhere."""
        on_screen = self.on_screen
        if on_screen is None or str(on_screen.uuid) != event["conversation"]:
            return

        def render() -> str:
            with translation.override(self.language):
                return user_pushes.controls_html(self.user, event["conversation"])

        html = await on_worker_thread(render)()
        if html:
            await self.send(text_data=html)

    async def title_checked(self, shown: str) -> None:
        """After the first connect of a chat page: its title as the page shows it."""
        on_screen = self.on_screen
        if on_screen is None:
            return

        def render() -> str:
            with translation.override(self.language):
                return user_pushes.title_html_if_changed(self.user, on_screen, shown)

        html = await on_worker_thread(render)()
        if html:
            await self.send(text_data=html)

    async def sidebar_resent(self) -> None:
        """After a reconnect: the events sent while the socket was away are lost."""

        def render() -> str:
            with translation.override(self.language):
                html = user_pushes.sidebar_list_html(self.user, self.on_screen)
                if self.archived_shown:
                    html += user_pushes.archived_list_html(self.user)
                return html

        await self.send(text_data=await on_worker_thread(render)())


async def join_user_group(consumer: AsyncWebsocketConsumer, user_id: int) -> None:
    """Every socket of the user hears the user's events (and session checks)."""
    user_events.sockets_served_on(asyncio.get_running_loop())
    if consumer.channel_layer is not None:
        group = user_events.user_group(user_id)
        await consumer.channel_layer.group_add(group, consumer.channel_name)


async def leave_user_group(consumer: AsyncWebsocketConsumer, user_id: int) -> None:
    if consumer.channel_layer is not None:
        await consumer.channel_layer.group_discard(
            user_events.user_group(user_id), consumer.channel_name
        )


class UserConsumer(UserEventsConsumer):
    """The socket of a page without a chat: it only listens."""

    on_screen = None

    async def connect(self) -> None:
        user = cast(User, self.scope["user"])
        if not user.is_authenticated:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.user = user
        self.archived_shown = self.scope.get("query_string", b"") == b"list=archived"
        self.language = socket_language(self.scope)
        session = self.scope.get("session")
        self.session_key = session.session_key if session is not None else None
        await self.accept()
        await join_user_group(self, user.pk)

    async def disconnect(self, code: int) -> None:
        if getattr(self, "user", None) is not None:
            await leave_user_group(self, self.user.pk)

    async def receive(self, text_data=None, bytes_data=None) -> None:
        """The page's only frame, sent on every (re)connect: after a reconnect its sidebar
        may have missed events."""
        try:
            again = bool(read_frame(text_data, bytes_data).get("again"))
        except BadFrame:
            return
        if again:
            await self.sidebar_resent()

    async def session_check(self, event: dict) -> None:
        """As the chat socket's: a signed-out page's socket closes at once."""
        if await session_over(self.session_key, self.user.pk, event):
            await self.close(code=CLOSE_SIGNED_OUT)
