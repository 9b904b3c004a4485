"""The chat socket at /ws/c/<uuid>/, speaking htmx's ws extension format.

The browser sends the composer form as JSON (plus an `action`); the server answers with
HTML fragments that htmx swaps by id. Each socket remembers how much of every reply it has
sent, so a reconnect or a second tab gets exactly the missing text: nothing lost, nothing
doubled. Generation never runs here: a socket only watches.
"""

import logging
from typing import cast

from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth.models import User
from django.utils import translation
from django.utils.translation import gettext as _

from conversations import chat_actions, pages, presenters, selectors
from conversations.errors import ChatError
from conversations.frames import BadFrame, id_field, id_list_field, read_frame, text_field
from conversations.live import process, stops
from conversations.live.fanout import fanout
from conversations.live.presence import PROCESS_ID
from conversations.live.registry import LiveReply, ReplyState
from conversations.live.threads import on_worker_thread
from conversations.models import Message
from conversations.observability import metrics
from conversations.streaming_markdown import UNKNOWN, Mark
from conversations.user_socket import (
    CLOSE_FORBIDDEN,
    CLOSE_SIGNED_OUT,
    UserEventsConsumer,
    join_user_group,
    leave_user_group,
    session_over,
    socket_language,
)

log = logging.getLogger(__name__)

__all__ = ["CLOSE_FORBIDDEN", "CLOSE_SIGNED_OUT", "ConversationConsumer"]

# What a socket last sent of a reply, when it was a final state: the generator's, or a
# sweep's (which a later update from a generator still alive replaces).
FINAL, SWEPT_FINAL = "final", "swept-final"


class ConversationConsumer(UserEventsConsumer):
    """A chat page's socket: its conversation's replies, and its user's events
    (user_socket.py)."""

    async def connect(self) -> None:
        # For this socket's own task (its errors, notices and renders); pushes fed from a
        # generator's task override it again where they render.
        self.language = socket_language(self.scope)
        translation.activate(self.language)
        self.conversation_uuid = str(self.scope["url_route"]["kwargs"]["uuid"])
        # AuthMiddlewareStack puts a lazy User (or AnonymousUser) in the scope.
        user = cast(User, self.scope["user"])
        conversation = await database_sync_to_async(selectors.conversation_get_for_user_or_none)(
            user, self.conversation_uuid
        )
        if conversation is None:
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.conversation = self.on_screen = conversation
        self.user, self.user_id = user, conversation.owner_id
        session = self.scope.get("session")
        self.session_key = session.session_key if session is not None else None
        # reply uuid -> (status, characters of content sent, characters of reasoning sent)
        self.sent: dict[str, tuple[str, int, int]] = {}
        # reply uuid -> the latest continuation of it this socket has shown (continued_at)
        self.continued: dict[str, int] = {}
        # reply uuid -> where this page stands in the reply's live Markdown render
        self.marks: dict[str, Mark] = {}
        self.sent_messages: set[str] = set()
        self.subscribed = False
        # Events that arrive while the socket is catching up wait here, in order.
        self.backlog: list | None = None
        await self.accept()
        metrics.websocket_opened()
        self.counted_open = True
        await join_user_group(self, self.user_id)
        process.start()

    async def disconnect(self, code: int) -> None:
        if getattr(self, "conversation", None) is None:
            return
        if getattr(self, "counted_open", False):
            metrics.websocket_closed()
        await leave_user_group(self, self.user_id)
        await fanout.unsubscribe(self.conversation_uuid, self)

    async def still_signed_in(self) -> bool:
        """The socket's session still signs in its user (read afresh: two queries)."""
        user_id = await on_worker_thread(selectors.session_user_id)(self.session_key)
        return user_id == self.user_id

    async def session_check(self, event: dict) -> None:
        """Told by socket_sessions that this user's sessions may have ended."""
        if await session_over(self.session_key, self.user_id, event):
            await self.close(code=CLOSE_SIGNED_OUT)

    async def dispatch(self, message: dict) -> None:
        """Channels' dispatch without its close_old_connections before every message: that
        is a trip to the one thread that thread-sensitive calls share, for each frame from
        the browser and each event from another process, and under load sends queued there.
        This consumer reaches the database only through database_sync_to_async, which
        closes stale connections itself, before and after each call."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    # --- from the browser --------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None):
        """Every frame gets its effect or a notice saying what was wrong; none closes the
        socket."""
        if not await self.still_signed_in():
            # Nothing this socket was asked reaches a provider or the database.
            await self.close(code=CLOSE_SIGNED_OUT)
            return
        try:
            data = read_frame(text_data, bytes_data)
            await self.dispatch_action(text_field(data, "action") or "send", data)
        except BadFrame as exc:
            log.info("bad frame on conversation %s: %s", self.conversation_uuid, exc.message)
            await self.notify(exc.message)
        except ChatError as exc:
            await self.notify(exc.message)
        except Exception:
            # A fault of ours: its traceback is logged, and the socket still answers.
            log.exception("frame failed on conversation %s", self.conversation_uuid)
            await self.notify(_("Something went wrong; that action did not happen."))

    async def dispatch_action(self, action: str, data: dict) -> None:
        if action == "sync":
            await self.sync(id_field(data, "last"), text_field(data, "status"))
            if data.get("again") is True:  # a reconnect: the user's events meanwhile are lost
                await self.sidebar_resent()
            elif title := text_field(data, "title"):  # a title changed before the socket
                await self.title_checked(title)
        elif action == "send":
            await chat_actions.send_message(
                conversation=self.conversation,
                content=text_field(data, "message"),
                idempotency_key=text_field(data, "idempotency_key") or None,
                attachment_ids=id_list_field(data, "attachments"),
            )
            await self.notify("")
        elif action == "stop":
            await stops.stop_reply(conversation=self.conversation)
        elif action == "retry":
            await chat_actions.retry_reply(
                conversation=self.conversation, reply_uuid=id_field(data, "reply")
            )
        elif action == "edit":
            await chat_actions.edit_message(
                conversation=self.conversation,
                message_uuid=id_field(data, "edited"),
                content=text_field(data, "message"),
            )
        elif action == "continue":
            await chat_actions.continue_reply(
                conversation=self.conversation, reply_uuid=id_field(data, "reply")
            )
        elif action == "branch":
            await chat_actions.switch_branch(
                conversation=self.conversation, message_uuid=id_field(data, "version")
            )
        else:
            await self.notify(_("Unknown action %(action)s.") % {"action": repr(action)})

    async def sync(self, last_uuid: str, last_status: str = "") -> None:
        """Bring the page up to date after (re)connecting, then go live. `last_status`: the
        status the page shows its last message in ("": not known)."""
        self.backlog = []
        live = await fanout.subscribe(self.conversation_uuid, self)
        self.subscribed = True
        missing = await database_sync_to_async(self._render_missing)(last_uuid, last_status)
        for uuid, status, content, reasoning, html in missing:
            if html:
                await self.send(text_data=html)
            if uuid:
                self.sent[uuid] = (status, len(content), len(reasoning))
                self.marks.pop(uuid, None)  # rendered whole: the next frame replaces it
                self.sent_messages.add(uuid)
        backlog, self.backlog = self.backlog, None
        if live is not None:
            await self.reply_changed(live)
        for kind, *args in backlog:
            await (self.reply_changed(*args) if kind == "reply" else self.messages_appended(*args))

    def _render_missing(
        self, last_uuid: str, last_status: str = ""
    ) -> list[tuple[str, str, str, str, str]]:
        messages = selectors.thread_messages_after(self.conversation, last_uuid)
        if messages is None:
            return self._render_thread()
        known = {last_uuid}
        rendered = []
        views = presenters.views_of_messages(selectors.read_messages(messages))  # one read
        for message, view in zip(messages, views, strict=True):
            html = presenters.render_message(view)
            if str(message.uuid) not in known:
                html = f'<div hx-swap-oob="beforeend:#messages">{html}</div>'
            rendered.append(
                (str(message.uuid), message.status, message.content, message.reasoning, html)
            )
        if len(messages) > 1 or (messages and messages[0].status != last_status):
            # Messages came, or the last one ended, while the page was away: so did the
            # pushes of the header's context gauge. A page that finds its thread as it left
            # it keeps its gauge (a page load rendered it a moment ago).
            rendered.append(("", "", "", "", pages.gauge_html(self.conversation, oob=True)))
        return rendered

    def _render_thread(self) -> list[tuple[str, str, str, str, str]]:
        """The page shows another branch than the one now on screen (switched in another
        tab while this one was away): the whole latest page replaces it, and its gauge."""
        page = pages.latest_page(self.conversation)
        rendered = [(str(m.uuid), m.status, m.content, m.reasoning, "") for m in page.messages]
        replaced = presenters.render_thread_replaced(page)
        rendered.append(("", "", "", "", replaced + pages.gauge_html(self.conversation, oob=True)))
        return rendered

    async def notify(self, text: str) -> None:
        await self.send(text_data=presenters.render_notice(text))

    # --- to the browser (called by the fan-out in this process) ----------------------------

    async def reply_changed(self, state: LiveReply | ReplyState) -> None:
        if self.backlog is not None:
            self.backlog.append(("reply", state))
            return
        if state.continued_at > self.continued.get(state.uuid, 0):
            # Continued after it ended here: shown afresh, streaming again.
            self.continued[state.uuid] = state.continued_at
            self.sent.pop(state.uuid, None)
        previous = self.sent.get(state.uuid)
        if previous is not None and previous[0] == FINAL:
            return
        if previous is not None and previous[0] == SWEPT_FINAL:
            if state.swept:
                return
            previous = None  # its generator was alive after all: show the reply afresh
        if state.final_html is not None:
            self.sent[state.uuid] = (SWEPT_FINAL if state.swept else FINAL, 0, 0)
            self.marks.pop(state.uuid, None)
            presenters.forget_live(state.uuid)
            await self.send(text_data=await self._final_html(state))
            return
        reasoning_sent = previous[2] if previous else 0
        needs_snapshot = (
            previous is None
            or previous[0] != state.status
            or (reasoning_sent == 0 and bool(state.reasoning))
        )
        if needs_snapshot:
            with translation.override(self.language):  # maybe called from a generator's task
                html, mark = presenters.render_live_message(state)
        else:
            page = self.marks.get(state.uuid, UNKNOWN)
            html, mark = presenters.render_delta(state, state.reasoning[reasoning_sent:], page)
        self.marks[state.uuid] = mark
        self.sent[state.uuid] = (state.status, len(state.content), len(state.reasoning))
        if html:
            await self.send(text_data=html)

    async def _final_html(self, state: LiveReply | ReplyState) -> str | None:
        """The shared final HTML is rendered in the site's default language; a socket in
        another language renders the finished reply itself (one read per reply)."""
        if self.language == settings.LANGUAGE_CODE:
            return state.final_html
        try:
            return await database_sync_to_async(self._render_final)(state.uuid)
        except Message.DoesNotExist:
            return state.final_html

    def _render_final(self, reply_uuid: str) -> str:
        with translation.override(self.language):
            message = selectors.message_get_in_conversation(self.conversation, reply_uuid)
            return pages.reply_final_html(message)

    async def messages_appended(self, html: str, uuids: list[str]) -> None:
        if self.backlog is not None:
            self.backlog.append(("messages", html, uuids))
            return
        if all(uuid in self.sent_messages for uuid in uuids):
            return
        self.sent_messages.update(uuids)
        await self.send(text_data=html)

    # --- from other processes (channel layer) ------------------------------------------

    async def reply_update(self, event: dict) -> None:
        if event.get("origin") == PROCESS_ID or not self.subscribed:
            return
        await self.reply_changed(
            ReplyState(
                uuid=event["reply"],
                status=event["status"],
                content=event["content"],
                reasoning=event["reasoning"],
                final_html=event.get("final_html"),
                swept=bool(event.get("swept")),
                continued_at=int(event.get("continued_at") or 0),
            )
        )

    async def messages_added(self, event: dict) -> None:
        if event.get("origin") == PROCESS_ID or not self.subscribed:
            return
        await self.messages_appended(event["html"], event["uuids"])
