"""Clients: websocket tabs speaking htmx's ws format, and SSE clients hitting the provider.

Every token's text is the provider's time.monotonic() when it wrote it (bench/provider.py),
so a client turns each frame into emit -> receive latencies by reading the numbers in it.
"""

import asyncio
import contextlib
import gc
import json
import random
import re
import time
from dataclasses import dataclass, field

from aiohttp import ClientSession, ClientTimeout, TCPConnector, WSMsgType

from tests.page_model import PageModel

STAMP = re.compile(r"\d+\.\d{6}")
FINAL = {"complete", "interrupted", "cancelled", "failed", "truncated"}


@dataclass
class ReplyResult:
    sent_at: float
    expected: int
    first_emit: float | None = None
    first_recv: float | None = None
    done_at: float | None = None
    status: str = ""
    # Still streaming when the level ended: stopped by the bench, not a failure.
    cut: bool = False
    # (emit, receive) per token, in order.
    tokens: list[tuple[float, float]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "complete" and len(self.tokens) == self.expected

    def add(self, stamps: list[str], received: float) -> None:
        for stamp in stamps:
            self.tokens.append((float(stamp), received))
        if self.first_recv is None and self.tokens:
            self.first_emit, self.first_recv = self.tokens[0][0], received


def prompt(tokens: int, tps: float) -> str:
    return f"Stream please: n={tokens} tps={tps} #{random.getrandbits(40):x}"


def new_session(limit: int = 0) -> ClientSession:
    return ClientSession(connector=TCPConnector(limit=limit), timeout=ClientTimeout(total=None))


# --- straight against the provider -------------------------------------------------------


async def direct_reply(
    session: ClientSession, url: str, tokens: int, tps: float, result: ReplyResult
) -> ReplyResult:
    body = {
        "model": "fake-model",
        "messages": [{"role": "user", "content": prompt(tokens, tps)}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    async with session.post(url + "/chat/completions", json=body) as response:
        async for line in response.content:
            received = time.monotonic()
            if line.startswith(b"data: {"):
                for choice in json.loads(line[6:])["choices"]:
                    if text := choice["delta"].get("content"):
                        result.add(STAMP.findall(text), received)
                    if choice.get("finish_reason"):
                        result.status = "complete"
    result.done_at = time.monotonic()
    return result


class DirectClient:
    def __init__(self, session: ClientSession, url: str) -> None:
        self.session, self.url = session, url

    async def reply(self, tokens: int, tps: float, result: ReplyResult) -> ReplyResult:
        return await direct_reply(self.session, self.url, tokens, tps, result)

    async def stop_reply(self) -> None:
        pass  # cancelling the read closed the connection: the provider stops

    async def close(self) -> None:
        pass


# --- a browser tab on a websocket --------------------------------------------------------


class TabClient:
    """One tab: connects, syncs, sends a message and reads frames until the reply ends."""

    def __init__(self, session: ClientSession, url: str, headers: dict[str, str]) -> None:
        self.session, self.url, self.headers = session, url, headers
        self.page = PageModel()
        self.ws = None
        self.done: set[str] = set()

    async def connect(self, *, sync: bool = True) -> None:
        self.ws = await self.session.ws_connect(
            self.url, headers=self.headers, max_msg_size=0, autoping=True
        )
        if sync:
            await self.ws.send_str(json.dumps({"action": "sync", "last": ""}))

    async def reply(self, tokens: int, tps: float, result: ReplyResult) -> ReplyResult:
        key = f"bench-{random.getrandbits(64):x}"
        message = {"action": "send", "message": prompt(tokens, tps), "idempotency_key": key}
        await self.ws.send_str(json.dumps(message))
        uuid, offset = None, 0
        while True:
            frame = await self.ws.receive()
            received = time.monotonic()
            if frame.type != WSMsgType.TEXT:
                result.status = f"socket {frame.type.name}"
                return result
            self.page.apply(frame.data)
            reply = self.page.last()
            if reply is None or reply.uuid in self.done:
                continue
            if reply.uuid != uuid:
                if reply.status in FINAL:  # an earlier reply, replayed by the sync
                    self.done.add(reply.uuid)
                    continue
                uuid, offset = reply.uuid, 0
            if reply.status in FINAL:
                # The final HTML is rendered Markdown: count its tokens rather than characters.
                result.add(STAMP.findall(reply.text)[len(result.tokens) :], received)
                result.status, result.done_at = reply.status, received
                self.done.add(uuid)
                return result
            result.add(STAMP.findall(reply.text, offset), received)
            offset = len(reply.text.rstrip())  # the paragraph's closing newline moves on

    async def stop_reply(self) -> None:
        """Stop the reply in flight, as the Stop button does: the server generates on after
        a socket closes, which would load the next level."""
        await self.ws.send_str(json.dumps({"action": "stop"}))

    async def still_open(self) -> bool:
        """Read what is waiting: False if the server has closed this socket."""
        try:
            while True:
                frame = await self.ws.receive(timeout=0.05)
                if frame.type != WSMsgType.TEXT:
                    return False
                self.page.apply(frame.data)
        except TimeoutError:
            return True

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()


async def connect_all(clients: list[TabClient], *, batch: int = 50, sync: bool = True) -> None:
    for start in range(0, len(clients), batch):
        await asyncio.gather(*(c.connect(sync=sync) for c in clients[start : start + batch]))


# --- a load level --------------------------------------------------------------------------


@dataclass
class LevelResult:
    streams: int
    window: tuple[float, float]
    replies: list[ReplyResult]
    failures: int


@contextlib.contextmanager
def collector_paused():
    """No garbage collection in the driver while a level runs, one between levels instead.

    A full collection of the driver's heap (every client's page and every token's timings)
    paused all clients at once, 400 ms at 500 streams, and the figures charged that to the
    server. Token lists are tuples of floats, freed without the collector; what cycles the
    clients leave wait a level.
    """
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.collect()


async def hold(
    clients: list, *, tokens: int, tps: float, seconds: float, sequential: bool = False
) -> LevelResult:
    """Every client streams replies back to back for `seconds`; starts are spread over one
    reply's length so that the level is steady. Replies that started in the first reply
    length (the ramp) are not measured. At the end, replies still streaming are stopped
    (their tokens so far count): waiting for them would add a reply's length per level."""
    reply_seconds = tokens / tps
    start = time.monotonic()
    warm = 0.0 if sequential else reply_seconds
    stop = start + seconds
    replies: list[ReplyResult] = []
    failures = 0

    async def run(client) -> None:
        nonlocal failures
        if not sequential:
            await asyncio.sleep(random.uniform(0, reply_seconds))
        while time.monotonic() < stop:
            result = ReplyResult(sent_at=time.monotonic(), expected=tokens)
            replies.append(result)
            try:
                await asyncio.wait_for(client.reply(tokens, tps, result), reply_seconds * 4 + 30)
            except (TimeoutError, OSError):
                failures += 1
                return
            except asyncio.CancelledError:  # the level ended with this reply streaming
                result.cut = True
                raise
            if not result.ok:
                failures += 1

    tasks = [asyncio.ensure_future(run(c)) for c in clients]
    if sequential:
        await asyncio.gather(*tasks)
    else:
        await asyncio.sleep(max(0.0, stop - time.monotonic()))
        in_flight = [c for c, t in zip(clients, tasks, strict=True) if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(c.stop_reply() for c in in_flight), return_exceptions=True)
        await asyncio.sleep(1)  # let the stops land before the next level
    return LevelResult(len(clients), (start + warm, stop), replies, failures)
