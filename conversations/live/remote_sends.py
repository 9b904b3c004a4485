"""Events for sockets in other processes, sent by a task of their own.

Nothing that streams, ends or sweeps a reply waits for Redis: the generator, the fragment
ticker and the sweeper leave their event here and go on, and one task per event loop sends
what waits, in the order it came. A stalled Redis then delays other processes' tabs, never
the reply itself, its heartbeat or the tabs of this process.

A reply's events are whole states (other processes trim them by their offsets), so a reply
has at most one event waiting, built from its newest state when it is sent: while Redis
stalls, a reply's updates collapse into one instead of piling up.
"""

import logging
from dataclasses import dataclass

from conversations.live import events
from conversations.live.presence import presence
from conversations.live.registry import LiveReply, ReplyState
from conversations.live.supervisor import supervisor

log = logging.getLogger(__name__)


def reply_event(state: LiveReply | ReplyState) -> dict:
    """A reply's whole state for sockets in other processes."""
    return {
        "type": events.REPLY_UPDATE,
        "reply": state.uuid,
        "status": state.status,
        "content": state.content,
        "reasoning": state.reasoning,
        "final_html": state.final_html,
        "swept": state.swept,
        "continued_at": state.continued_at,
    }


@dataclass
class _Waiting:
    conversation_uuid: str
    # A reply's state (its event is built when sent), or a ready event.
    what: LiveReply | ReplyState | dict
    # Whether to ask Redis first if another process watches: for what every tab must get
    # (new messages, a final state), where the saver's flag may be a round behind.
    ask_first: bool


class RemoteSends:
    def __init__(self) -> None:
        # By key, in the order first queued: "reply:<uuid>", or "messages:<n>".
        self._waiting: dict[str, _Waiting] = {}
        self._queued = 0

    def reply(
        self, conversation_uuid: str, state: LiveReply | ReplyState, *, ask_first: bool
    ) -> None:
        """Send `state` to other processes' sockets soon; it replaces the reply's waiting
        event, if any, keeping its place (so a reply's update never overtakes the new
        messages that brought the reply)."""
        key = f"reply:{state.uuid}"
        earlier = self._waiting.get(key)
        ask_first = ask_first or (earlier is not None and earlier.ask_first)
        self._waiting[key] = _Waiting(str(conversation_uuid), state, ask_first)
        self._ensure_sending()

    def messages(self, conversation_uuid: str, html: str, uuids: list[str]) -> None:
        self._queued += 1
        event = {"type": events.MESSAGES_ADDED, "html": html, "uuids": uuids}
        self._waiting[f"messages:{self._queued}"] = _Waiting(
            str(conversation_uuid), event, ask_first=True
        )
        self._ensure_sending()

    def waiting(self) -> int:
        return len(self._waiting)

    def _ensure_sending(self) -> None:
        supervisor.ensure("remote-sends", self._send_waiting)

    async def _send_waiting(self) -> None:
        while self._waiting:
            key = next(iter(self._waiting))
            waiting = self._waiting.pop(key)
            try:
                await self._send(waiting)
            except Exception:  # Redis answered with an error: that event is lost to them
                log.warning("an event for other processes was not sent", exc_info=True)

    async def _send(self, waiting: _Waiting) -> None:
        conversation_uuid = waiting.conversation_uuid
        if waiting.ask_first and not await presence().watched_elsewhere([conversation_uuid]):
            return
        what = waiting.what
        await presence().send(
            conversation_uuid, what if isinstance(what, dict) else reply_event(what)
        )

    def reset(self) -> None:
        """Forget what waits (tests run many event loops in one process)."""
        self._waiting.clear()


remote_sends = RemoteSends()
