"""The partial text of a process's live replies, saved to the database together."""

import asyncio
import logging
import time

from django.conf import settings

from conversations import services
from conversations.live.presence import presence
from conversations.live.registry import LiveReply, registry
from conversations.live.supervisor import supervisor
from conversations.live.threads import on_heartbeat_thread
from conversations.models import MessageStatus

log = logging.getLogger(__name__)


class Saver:
    """The partial text of every live reply of this process, saved each
    STREAM_SAVE_INTERVAL in one statement: a heartbeat per reply, but one database round
    trip (and one Redis round trip to learn who watches from elsewhere) per process.

    The heartbeat never waits for Redis: other processes' sweepers read it, and a Redis
    that stalls must not make a live reply look dead. The database write goes first, on a
    thread of its own; who watches from elsewhere is asked after it, by a task of its own.
    """

    def ensure_running(self) -> None:
        supervisor.ensure("partial-saver", self._run)

    async def _run(self) -> None:
        while registry.live_count():
            await asyncio.sleep(settings.STREAM_SAVE_INTERVAL)
            try:
                await self.save_all()
            except Exception:  # the next round retries; the replies keep streaming
                log.exception("saving partial replies failed")

    async def save_all(self) -> None:
        streaming = [
            live for live in registry.live_replies() if live.status == MessageStatus.STREAMING
        ]
        if not streaming:
            return
        now = time.monotonic()
        heartbeat_due = now - settings.STREAM_STALE_AFTER / 3
        # A reply claimed (or saved) moments before this round waits for the next one.
        too_recent = now - settings.STREAM_SAVE_INTERVAL / 2
        partials, saved = [], []
        for live in streaming:
            lengths = (live.content_length, live.reasoning_length)
            changed = lengths != live.saved_lengths and live.saved_at <= too_recent
            if changed or live.saved_at <= heartbeat_due:
                partials.append(services.Partial(live.reply_id, live.content, live.reasoning))
                saved.append((live, lengths))
        if partials:
            await on_heartbeat_thread(services.replies_save_partial)(partials=partials)
        for live, lengths in saved:
            live.saved_lengths, live.saved_at = lengths, now
        if presence().shared:
            # At most one lookup at a time: while Redis stalls, rounds do not pile up.
            supervisor.ensure("remote-watchers", lambda: _look_up_remote_watchers(streaming))


async def _look_up_remote_watchers(streaming: list[LiveReply]) -> None:
    """Which of these replies sockets in other processes watch: the fan-out sends their
    deltas through the channel layer (live.fanout)."""
    watched = await presence().watched_elsewhere([live.conversation_uuid for live in streaming])
    for live in streaming:
        live.remote_watchers = live.conversation_uuid in watched


saver = Saver()
