"""The replies this process generates: each one's whole text so far, always current."""

import asyncio
import time
from dataclasses import dataclass, field


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
    task: asyncio.Task[None] | None = None
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
    # A live reply's state is its generator's, never a sweep's (ReplyState.swept).
    swept: bool = False
    # When its latest continuation began (ms since the epoch; 0: not a continuation). A
    # socket that saw the reply end shows it streaming again for a later mark (consumers).
    continued_at: int = 0

    def resume(self, content: str, reasoning: str) -> None:
        """Start from the text a reply already has (a continuation appends to it)."""
        self.content_parts[:] = [content] if content else []
        self.reasoning_parts[:] = [reasoning] if reasoning else []
        self.content_length, self.reasoning_length = len(content), len(reasoning)
        self.saved_lengths = (len(content), len(reasoning))
        self.continued_at = int(time.time() * 1000)

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
    # A final state a sweep gave the reply: its generator may yet be alive elsewhere, and
    # its later updates then replace this one.
    swept: bool = False
    # LiveReply.continued_at of the generator's state (0: a first call, or not known).
    continued_at: int = 0


class Registry:
    """Live replies by uuid and by conversation (at most one in flight per conversation)."""

    def __init__(self) -> None:
        self._by_conversation: dict[str, LiveReply] = {}
        self._by_uuid: dict[str, LiveReply] = {}

    def register(self, live: LiveReply) -> None:
        self._by_conversation[live.conversation_uuid] = live
        self._by_uuid[live.uuid] = live

    def unregister(self, live: LiveReply) -> None:
        if self._by_conversation.get(live.conversation_uuid) is live:
            del self._by_conversation[live.conversation_uuid]
        self._by_uuid.pop(live.uuid, None)

    def live_reply(self, reply_uuid: str) -> LiveReply | None:
        return self._by_uuid.get(str(reply_uuid))

    def live_in_conversation(self, conversation_uuid: str) -> LiveReply | None:
        return self._by_conversation.get(str(conversation_uuid))

    def live_count(self) -> int:
        return len(self._by_uuid)

    def live_ids(self) -> frozenset[int]:
        return frozenset(live.reply_id for live in self._by_uuid.values())

    def live_replies(self) -> list[LiveReply]:
        return list(self._by_uuid.values())

    def cancel(self, reply_uuid: str) -> bool:
        """Stop a reply generated in this process; the text so far is kept. True when this
        process has it: a reply already ending (its stream over, its final state being
        saved) is left to end as it is."""
        live = self.live_reply(reply_uuid)
        if live is None or live.task is None or live.task.done():
            return False
        if not live.ending:
            live.task.cancel()
        return True

    def reset(self) -> None:
        self._by_conversation.clear()
        self._by_uuid.clear()


registry = Registry()
