"""Reply updates to every socket watching a conversation, in this process and in others.

Sockets in the process that generates a reply are fed directly: a fragment costs a function
call per socket instead of ~0.3 ms of channel-layer CPU. An event goes to other processes
only when one of them has a socket open on the same conversation (live.presence: each socket
announces itself before it reads what it missed from the database). So a publisher that has
committed, then finds no other process watching, misses no one: new messages and final states
ask afresh, while deltas use what the saver re-reads each STREAM_SAVE_INTERVAL (all of a
process's live replies in one round trip); a tab that opens elsewhere mid-reply catches up
with the next delta after that. Events for other processes leave through live.remote_sends,
a task of their own: publishing never waits for Redis.

Fragments are coalesced per reply: a reply's first text (and any text after a quiet
interval) goes out at once; text arriving sooner waits for the process-wide tick, which
publishes every waiting reply together. The interval grows with the number of live replies
(FRAGMENT_INTERVAL_PER_LIVE_REPLY, up to FRAGMENT_INTERVAL_CEILING): under load each socket
gets fewer, larger frames, which is what keeps the added latency bounded.
"""

import asyncio
import logging
import time
from typing import Protocol

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import translation

from conversations import services
from conversations.live import rendering
from conversations.live.presence import WATCH_TTL_SECONDS, presence
from conversations.live.registry import LiveReply, ReplyState, registry
from conversations.live.remote_sends import remote_sends
from conversations.live.supervisor import supervisor
from conversations.models import Message

log = logging.getLogger(__name__)

# Under load, each live reply adds this much to the fragment interval (200 replies: 0.1 s)...
FRAGMENT_INTERVAL_PER_LIVE_REPLY = 0.0005
# ...up to this: a token waits at most this long for its frame (the budget is 250 ms p99,
# and a loaded loop adds its own lag).
FRAGMENT_INTERVAL_CEILING = 0.1


class Subscriber(Protocol):
    # The socket's name on the channel layer, for events from other processes.
    channel_name: str

    async def reply_changed(self, state: LiveReply | ReplyState) -> None: ...

    async def messages_appended(self, html: str, uuids: list[str]) -> None: ...


def final_state(message: Message, html: str) -> ReplyState:
    return ReplyState(
        uuid=str(message.uuid),
        status=message.status,
        content=message.content,
        reasoning=message.reasoning,
        final_html=html,
        swept=message.error_code == services.SWEPT,
    )


class Fanout:
    def __init__(self) -> None:
        self._subscribers: dict[str, set[Subscriber]] = {}
        # Replies with text waiting for the next tick.
        self._due: list[LiveReply] = []

    # --- subscriptions -----------------------------------------------------------------

    async def subscribe(self, conversation_uuid: str, subscriber: Subscriber) -> LiveReply | None:
        """Start feeding `subscriber`; returns the live reply to snapshot, if any.

        No await happens between reading the live reply and registering, so the snapshot
        and the following deltas line up exactly.
        """
        key = str(conversation_uuid)
        self._subscribers.setdefault(key, set()).add(subscriber)
        live = registry.live_in_conversation(key)
        await presence().join(key, subscriber.channel_name)
        # Every time, not only for the first socket: the caller reads the database next, and
        # a publisher elsewhere relies on this process being in the set before that read.
        await presence().watch(key)
        if presence().shared:
            supervisor.ensure("watch-renewal", self._keep_watching)
        return live

    async def unsubscribe(self, conversation_uuid: str, subscriber: Subscriber) -> None:
        key = str(conversation_uuid)
        subscribers = self._subscribers.get(key)
        if not subscribers or subscriber not in subscribers:
            return
        subscribers.discard(subscriber)
        # The set is settled before any await: two sockets of one conversation leaving at
        # once must not both find it empty and both remove it.
        if not subscribers:
            del self._subscribers[key]
            await presence().unwatch(key)
            if self._subscribers.get(key):  # a socket subscribed meanwhile: keep watching
                await presence().watch(key)
        await presence().leave(key, subscriber.channel_name)

    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subscribers.values())

    async def _keep_watching(self) -> None:
        """Renew this process's entries while its sockets stay open: an entry that expired
        under an open tab would leave that tab without the messages sent elsewhere."""
        while self._subscribers:
            await asyncio.sleep(WATCH_TTL_SECONDS / 3)
            try:
                await presence().renew(list(self._subscribers))
            except Exception:
                log.warning("could not renew watchers in Redis", exc_info=True)

    # --- publishing --------------------------------------------------------------------

    def fragment_interval(self) -> float:
        """The shortest gap between two fragments of one reply: STREAM_FRAGMENT_INTERVAL, or
        longer when many replies stream in this process (fewer frames, same text)."""
        under_load = registry.live_count() * FRAGMENT_INTERVAL_PER_LIVE_REPLY
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
        supervisor.ensure("fragment-ticker", self._tick)

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
        if live.final_html is not None and presence().shared:
            # The final state must reach every tab: asked afresh, not from the flag the
            # saver refreshes each save interval.
            remote_sends.reply(live.conversation_uuid, live, ask_first=True)
        elif live.remote_watchers:
            remote_sends.reply(live.conversation_uuid, live, ask_first=False)

    async def publish_state(self, conversation_uuid: str, state: ReplyState) -> None:
        """A reply update from outside a generator (a sweep, an orphan stop)."""
        for subscriber in list(self._subscribers.get(str(conversation_uuid), ())):
            await subscriber.reply_changed(state)
        if presence().shared:
            remote_sends.reply(str(conversation_uuid), state, ask_first=False)

    async def publish_final(self, reply: Message) -> None:
        """Tell every socket that a reply ended outside a generator (a sweep, an orphan
        stop)."""

        def _render() -> tuple[str, ReplyState]:
            # Shared final HTML is in the site's language, as a generator's is: sockets in
            # another language render their own (consumers.py), whoever stopped the reply.
            with translation.override(settings.LANGUAGE_CODE):
                html = rendering.final_html(reply)
            return str(reply.conversation.uuid), final_state(reply, html)

        conversation_uuid, state = await database_sync_to_async(_render)()
        await self.publish_state(conversation_uuid, state)

    async def publish_messages(self, conversation_uuid: str, html: str, uuids: list[str]) -> None:
        for subscriber in list(self._subscribers.get(str(conversation_uuid), ())):
            await subscriber.messages_appended(html, uuids)
        if presence().shared:
            remote_sends.messages(str(conversation_uuid), html, uuids)

    def reset(self) -> None:
        """Forget everything (tests run many event loops in one process)."""
        self._subscribers.clear()
        self._due.clear()
        remote_sends.reset()


fanout = Fanout()
