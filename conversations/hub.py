"""In-process fan-out of reply updates, bridged to other processes through the channel layer.

Sockets in the process that generates a reply are fed directly: a fragment costs a function
call per socket instead of ~0.3 ms of channel-layer CPU. The channel layer is used only when
another process has a socket open on the same conversation; processes announce that in a
Redis set per conversation (`chatsite:watch:<uuid>`), each socket before it reads what it
missed from the database. So a publisher that has committed, then finds no other process in
the set, misses no one: new messages and final states ask the set afresh, while deltas use
what the saver re-reads each STREAM_SAVE_INTERVAL (all of a process's live replies in one
round trip); a tab that opens elsewhere mid-reply catches up with the next delta after that.

Fragments are coalesced per reply: a reply's first text (and any text after a quiet
interval) goes out at once; text arriving sooner waits for the process-wide tick, which
publishes every waiting reply together. The interval grows with the number of live replies
(FRAGMENT_INTERVAL_PER_LIVE_REPLY, up to FRAGMENT_INTERVAL_CEILING): under load each socket
gets fewer, larger frames, which is what keeps the added latency bounded.
"""

import asyncio
import contextvars
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Protocol, cast

# At import, not at the first socket: importing the client (and the metrics modules it
# loads) took ~100 ms on the event loop, a stall of every stream in the process.
import redis.asyncio as redis
from channels.layers import BaseChannelLayer, get_channel_layer
from django.conf import settings
from redis.commands.core import AsyncScript

from conversations import events

log = logging.getLogger(__name__)

# Identifies this process in the watcher sets and on events it sends itself through Redis.
PROCESS_ID = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
WATCH_TTL_SECONDS = 3600
# Under load, each live reply adds this much to the fragment interval (200 replies: 0.1 s)...
FRAGMENT_INTERVAL_PER_LIVE_REPLY = 0.0005
# ...up to this: a token waits at most this long for its frame (the budget is 250 ms p99,
# and a loaded loop adds its own lag).
FRAGMENT_INTERVAL_CEILING = 0.1


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
    # Set once the stream is over and the reply is saving its final state: a stop then has
    # nothing left to stop, and cancelling the task would lose that save.
    ending: bool = False
    # Sockets in other processes watch this conversation (refreshed by the saver).
    remote_watchers: bool = False
    # time.monotonic() of the first reasoning token and of the first answer token after it.
    reasoning_started_at: float | None = None
    reasoning_ended_at: float | None = None
    # time.monotonic() of the last publish, and whether text waits for the next tick.
    published_at: float = 0.0
    due: bool = False
    # What the database holds: (content, reasoning) lengths saved, and when (the heartbeat).
    saved_lengths: tuple[int, int] = (0, 0)
    saved_at: float = field(default_factory=time.monotonic)

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


# Which of KEYS (watcher sets) hold a process other than ARGV[1], as 1-based positions: one
# command however many conversations, where a pipeline of SMEMBERS cost ~0.1 ms of client
# CPU per conversation.
WATCHED_ELSEWHERE = """
local found = {}
for index, key in ipairs(KEYS) do
  for _, member in ipairs(redis.call('SMEMBERS', key)) do
    if member ~= ARGV[1] then
      found[#found + 1] = index
      break
    end
  end
end
return found
"""


def _watch_key(conversation_uuid: str) -> str:
    return f"chatsite:watch:{conversation_uuid}"


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
        # Replies with text waiting for the next tick, and the task that ticks.
        self._due: list[LiveReply] = []
        self._ticker: asyncio.Task | None = None
        # Renews this process's entries in the watcher sets while sockets are open.
        self._keeper: asyncio.Task | None = None
        self._watched_script: AsyncScript | None = None

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

    def live_replies(self) -> list[LiveReply]:
        return list(self._live_by_uuid.values())

    # --- subscriptions -----------------------------------------------------------------

    async def subscribe(self, conversation_uuid: str, subscriber: Subscriber) -> LiveReply | None:
        """Start feeding `subscriber`; returns the live reply to snapshot, if any.

        No await happens between reading the live reply and registering, so the snapshot
        and the following deltas line up exactly.
        """
        key = str(conversation_uuid)
        self._subscribers.setdefault(key, set()).add(subscriber)
        live = self._live_by_conversation.get(key)
        # Every time, not only for the first socket: the caller reads the database next, and
        # a publisher elsewhere relies on this process being in the set before that read.
        await self._watch(key, True)
        if self._keeper is None or self._keeper.done():
            self._keeper = asyncio.get_running_loop().create_task(
                self._keep_watching(), context=contextvars.Context()
            )
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
            if self._subscribers.get(key):  # a socket subscribed meanwhile: keep watching
                await self._watch(key, True)

    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subscribers.values())

    # --- publishing --------------------------------------------------------------------

    def fragment_interval(self) -> float:
        """The shortest gap between two fragments of one reply: STREAM_FRAGMENT_INTERVAL, or
        longer when many replies stream in this process (fewer frames, same text)."""
        under_load = len(self._live_by_uuid) * FRAGMENT_INTERVAL_PER_LIVE_REPLY
        base = settings.STREAM_FRAGMENT_INTERVAL
        return max(base, min(under_load, FRAGMENT_INTERVAL_CEILING))

    async def reply_grew(self, live: LiveReply) -> None:
        """`live` has new text: publish it now if the reply has been quiet for an interval,
        else with every other waiting reply on the next tick."""
        if live.due:
            return
        if time.monotonic() - live.published_at >= self.fragment_interval():
            await self.publish_reply(live)
            return
        live.due = True
        self._due.append(live)
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.get_running_loop().create_task(
                self._tick(), context=contextvars.Context()
            )

    async def _tick(self) -> None:
        """Publish the waiting replies once per interval, until none waits. Ticks keep their
        cadence: with hundreds of replies, publishing a tick takes tens of milliseconds, and
        sleeping a whole interval after it would add that to every token's wait."""
        # The first tick is due one interval after the oldest waiting reply's last fragment.
        next_tick = min(live.published_at for live in self._due)
        while self._due:
            next_tick = max(next_tick + self.fragment_interval(), time.monotonic())
            await asyncio.sleep(next_tick - time.monotonic())
            due, self._due = self._due, []
            for live in due:
                await self.flush_reply(live)

    async def flush_reply(self, live: LiveReply) -> None:
        """Publish the text `live` has waiting for the next tick, if any, now."""
        if live.due:
            live.due = False
            await self.publish_reply(live)

    async def publish_reply(self, live: LiveReply) -> None:
        live.published_at = time.monotonic()
        for subscriber in list(self._subscribers.get(live.conversation_uuid, ())):
            try:
                await subscriber.reply_changed(live)
            except Exception:  # one broken socket must not stop the others
                log.exception("delivering a reply update failed")
        if live.final_html is not None:
            # The final state must reach every tab: ask afresh rather than trust the flag
            # the saver refreshes each save interval.
            if await self.other_processes_watch(live.conversation_uuid):
                await self._send_remote(live.conversation_uuid, _reply_event(live))
        elif live.remote_watchers:
            await self._send_remote(live.conversation_uuid, _reply_event(live))

    async def publish_state(self, conversation_uuid: str, state: ReplyState) -> None:
        """A reply update from outside a generator (a sweep, an orphan stop)."""
        for subscriber in list(self._subscribers.get(str(conversation_uuid), ())):
            await subscriber.reply_changed(state)
        await self._send_remote(str(conversation_uuid), _reply_event(state))

    async def publish_messages(self, conversation_uuid: str, html: str, uuids: list[str]) -> None:
        for subscriber in list(self._subscribers.get(str(conversation_uuid), ())):
            await subscriber.messages_appended(html, uuids)
        if await self.other_processes_watch(str(conversation_uuid)):
            await self._send_remote(
                str(conversation_uuid),
                {"type": events.MESSAGES_ADDED, "html": html, "uuids": uuids},
            )

    async def _send_remote(self, conversation_uuid: str, event: dict) -> None:
        if not settings.REDIS_URL:
            return  # one process: every socket was fed directly
        layer = cast(BaseChannelLayer, get_channel_layer())  # settings always name one
        event["origin"] = PROCESS_ID
        try:
            await layer.group_send(events.conversation_group(conversation_uuid), event)
        except Exception:
            log.warning("channel layer unavailable; other processes miss an update", exc_info=True)

    # --- which conversations other processes watch --------------------------------------

    def _redis_client(self):
        if self._redis is None:
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
        try:
            if watching:
                await self._watch_all([conversation_uuid])
            else:
                await self._redis_client().srem(_watch_key(conversation_uuid), PROCESS_ID)
        except Exception:
            log.warning("could not record a watcher in Redis", exc_info=True)

    async def _watch_all(self, conversation_uuids: list[str]) -> None:
        async with self._redis_client().pipeline(transaction=False) as pipe:
            for conversation_uuid in conversation_uuids:
                pipe.sadd(_watch_key(conversation_uuid), PROCESS_ID)
                pipe.expire(_watch_key(conversation_uuid), WATCH_TTL_SECONDS)
            await pipe.execute()

    async def _keep_watching(self) -> None:
        """Renew this process's entries while its sockets stay open: an entry that expired
        under an open tab would leave that tab without the messages sent elsewhere."""
        while self._subscribers and settings.REDIS_URL:
            await asyncio.sleep(WATCH_TTL_SECONDS / 3)
            try:
                await self._watch_all(list(self._subscribers))
            except Exception:
                log.warning("could not renew watchers in Redis", exc_info=True)

    async def other_processes_watch(self, conversation_uuid: str) -> bool:
        return bool(await self.watched_elsewhere([conversation_uuid]))

    async def watched_elsewhere(self, conversation_uuids: list[str]) -> set[str]:
        """Which of these conversations a socket in another process watches: one round trip
        to Redis for all of them."""
        if not settings.REDIS_URL or not conversation_uuids:
            return set()
        try:
            if self._watched_script is None:
                self._watched_script = self._redis_client().register_script(WATCHED_ELSEWHERE)
            keys = [_watch_key(conversation_uuid) for conversation_uuid in conversation_uuids]
            found = await self._watched_script(keys=keys, args=[PROCESS_ID])
        except Exception:
            return set(conversation_uuids)  # unsure: better extra events than a missed tab
        return {conversation_uuids[index - 1] for index in found}

    def reset(self) -> None:
        """Forget everything (tests run many event loops in one process)."""
        self._subscribers.clear()
        self._live_by_conversation.clear()
        self._live_by_uuid.clear()
        self._redis = None
        self._watched_script = None
        self._due.clear()
        self._ticker = None
        self._keeper = None


hub = Hub()
