"""In-process fan-out of reply updates, bridged to other processes through the channel layer.

Sockets in the process that generates a reply are fed directly: a fragment costs a function
call per socket instead of ~0.3 ms of channel-layer CPU. The channel layer is used only when
another process has a socket open on the same conversation; processes announce that in a
Redis set per conversation (`chatsite:watch:<uuid>`), which generators re-read once a second.
"""

import asyncio
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Protocol

from channels.layers import get_channel_layer
from django.conf import settings

from conversations import events

log = logging.getLogger(__name__)

# Identifies this process in the watcher sets and on events it sends itself through Redis.
PROCESS_ID = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
WATCH_TTL_SECONDS = 3600


@dataclass
class LiveReply:
    """A reply being generated in this process: the whole text so far, always current."""

    reply_id: int
    uuid: str
    conversation_uuid: str
    status: str = "pending"
    content_parts: list[str] = field(default_factory=list)
    reasoning_parts: list[str] = field(default_factory=list)
    content_length: int = 0
    reasoning_length: int = 0
    # Set once the reply has its final state; the HTML every socket swaps in.
    final_html: str | None = None
    task: asyncio.Task | None = None
    # Sockets in other processes watch this conversation (refreshed about once a second).
    remote_watchers: bool = False
    # time.monotonic() of the first reasoning token and of the first answer token after it.
    reasoning_started_at: float | None = None
    reasoning_ended_at: float | None = None

    @property
    def content(self) -> str:
        if len(self.content_parts) > 1:
            self.content_parts[:] = ["".join(self.content_parts)]
        return self.content_parts[0] if self.content_parts else ""

    @property
    def reasoning(self) -> str:
        if len(self.reasoning_parts) > 1:
            self.reasoning_parts[:] = ["".join(self.reasoning_parts)]
        return self.reasoning_parts[0] if self.reasoning_parts else ""

    def add_content(self, text: str) -> None:
        if self.reasoning_started_at is not None and self.reasoning_ended_at is None:
            self.reasoning_ended_at = time.monotonic()
        self.content_parts.append(text)
        self.content_length += len(text)

    def add_reasoning(self, text: str) -> None:
        if self.reasoning_started_at is None:
            self.reasoning_started_at = time.monotonic()
        self.reasoning_parts.append(text)
        self.reasoning_length += len(text)

    @property
    def reasoning_ms(self) -> int | None:
        """How long the model thought; up to now if it never got to an answer."""
        if self.reasoning_started_at is None:
            return None
        ended = self.reasoning_ended_at or time.monotonic()
        return int((ended - self.reasoning_started_at) * 1000)


@dataclass
class ReplyState:
    """A reply's state as one socket needs it, whether local (LiveReply) or from an event."""

    uuid: str
    status: str
    content: str
    reasoning: str
    final_html: str | None = None


class Subscriber(Protocol):
    async def reply_changed(self, state: "LiveReply | ReplyState") -> None: ...

    async def messages_appended(self, html: str, uuids: list[str]) -> None: ...


def _reply_event(state: "LiveReply | ReplyState") -> dict:
    """A reply's whole state for sockets in other processes: they trim it by their offsets."""
    return {
        "type": events.REPLY_UPDATE,
        "reply": state.uuid,
        "status": state.status,
        "content": state.content,
        "reasoning": state.reasoning,
        "final_html": state.final_html,
    }


class Hub:
    def __init__(self) -> None:
        self._subscribers: dict[str, set[Subscriber]] = {}
        self._live_by_conversation: dict[str, LiveReply] = {}
        self._live_by_uuid: dict[str, LiveReply] = {}
        self._redis = None

    # --- registry of live replies ------------------------------------------------------

    def register(self, live: LiveReply) -> None:
        self._live_by_conversation[live.conversation_uuid] = live
        self._live_by_uuid[live.uuid] = live

    def unregister(self, live: LiveReply) -> None:
        if self._live_by_conversation.get(live.conversation_uuid) is live:
            del self._live_by_conversation[live.conversation_uuid]
        self._live_by_uuid.pop(live.uuid, None)

    def live_reply(self, reply_uuid: str) -> LiveReply | None:
        return self._live_by_uuid.get(str(reply_uuid))

    def live_in_conversation(self, conversation_uuid: str) -> LiveReply | None:
        return self._live_by_conversation.get(str(conversation_uuid))

    def live_count(self) -> int:
        return len(self._live_by_uuid)

    def live_ids(self) -> frozenset[int]:
        return frozenset(live.reply_id for live in self._live_by_uuid.values())

    # --- subscriptions -----------------------------------------------------------------

    async def subscribe(self, conversation_uuid: str, subscriber: Subscriber) -> LiveReply | None:
        """Start feeding `subscriber`; returns the live reply to snapshot, if any.

        No await happens between reading the live reply and registering, so the snapshot
        and the following deltas line up exactly.
        """
        key = str(conversation_uuid)
        subscribers = self._subscribers.setdefault(key, set())
        first = not subscribers
        subscribers.add(subscriber)
        live = self._live_by_conversation.get(key)
        if first:
            await self._watch(key, True)
        return live

    async def unsubscribe(self, conversation_uuid: str, subscriber: Subscriber) -> None:
        key = str(conversation_uuid)
        subscribers = self._subscribers.get(key)
        if not subscribers:
            return
        subscribers.discard(subscriber)
        if not subscribers:
            del self._subscribers[key]
            await self._watch(key, False)

    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subscribers.values())

    # --- publishing --------------------------------------------------------------------

    async def publish_reply(self, live: LiveReply) -> None:
        for subscriber in list(self._subscribers.get(live.conversation_uuid, ())):
            try:
                await subscriber.reply_changed(live)
            except Exception:  # one broken socket must not stop the others
                log.exception("delivering a reply update failed")
        if live.remote_watchers or live.final_html is not None:
            await self._send_remote(live.conversation_uuid, _reply_event(live))

    async def publish_state(self, conversation_uuid: str, state: ReplyState) -> None:
        """A reply update from outside a generator (a sweep, an orphan stop)."""
        for subscriber in list(self._subscribers.get(str(conversation_uuid), ())):
            await subscriber.reply_changed(state)
        await self._send_remote(str(conversation_uuid), _reply_event(state))

    async def publish_messages(self, conversation_uuid: str, html: str, uuids: list[str]) -> None:
        for subscriber in list(self._subscribers.get(str(conversation_uuid), ())):
            await subscriber.messages_appended(html, uuids)
        await self._send_remote(
            str(conversation_uuid),
            {"type": events.MESSAGES_ADDED, "html": html, "uuids": uuids},
        )

    async def _send_remote(self, conversation_uuid: str, event: dict) -> None:
        if not settings.REDIS_URL:
            return  # one process: every socket was fed directly
        layer = get_channel_layer()
        event["origin"] = PROCESS_ID
        try:
            await layer.group_send(events.conversation_group(conversation_uuid), event)
        except Exception:
            log.warning("channel layer unavailable; other processes miss an update", exc_info=True)

    # --- which conversations other processes watch --------------------------------------

    def _redis_client(self):
        if self._redis is None:
            import redis.asyncio as redis

            # Hundreds of sockets connecting at once must queue for a connection, not fail
            # with "Too many connections" as redis-py's default pool does past 100.
            pool = redis.BlockingConnectionPool.from_url(
                settings.REDIS_URL, max_connections=50, timeout=10
            )
            self._redis = redis.Redis(connection_pool=pool)
        return self._redis

    async def _watch(self, conversation_uuid: str, watching: bool) -> None:
        if not settings.REDIS_URL:
            return
        key = f"chatsite:watch:{conversation_uuid}"
        try:
            client = self._redis_client()
            if watching:
                await client.sadd(key, PROCESS_ID)
                await client.expire(key, WATCH_TTL_SECONDS)
            else:
                await client.srem(key, PROCESS_ID)
        except Exception:
            log.warning("could not record a watcher in Redis", exc_info=True)

    async def other_processes_watch(self, conversation_uuid: str) -> bool:
        if not settings.REDIS_URL:
            return False
        try:
            members = await self._redis_client().smembers(f"chatsite:watch:{conversation_uuid}")
        except Exception:
            return True  # unsure: better to send a few extra events than to miss a tab
        return any(m.decode() != PROCESS_ID for m in members)

    def reset(self) -> None:
        """Forget everything (tests run many event loops in one process)."""
        self._subscribers.clear()
        self._live_by_conversation.clear()
        self._live_by_uuid.clear()
        self._redis = None


hub = Hub()
