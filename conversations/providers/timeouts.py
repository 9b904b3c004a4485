"""Read timeouts for streaming provider bodies, checked for all of a loop's streams at once.

aiohttp enforces a read timeout by cancelling and re-arming a timer on every chunk it
receives: at 250 streams of 20 tokens a second that was ~5% of a busy server's CPU. Once a
body starts streaming, transport.py turns that timer off for the body and hands its reader to the
watch of its event loop, which compares each reader's byte count a few times per timeout. A
reader that has received nothing for the whole timeout gets the error aiohttp's own timer
would have set, so the stream still ends as a ProviderTimeout. The response headers stay
under aiohttp's timer: only the body is watched here.

The watch's loop (`StallWatch.run`) is started by the serving process's supervisor
(conversations.live). Where it does not run (a stream read outside a server), a body keeps
aiohttp's own timer.
"""

import asyncio
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from aiohttp import ClientResponse, SocketTimeoutError
from aiohttp.streams import StreamReader

# Checks per timeout: a stall is noticed between (1 - 1/CHECKS) and 1 + 1/CHECKS timeouts
# after the last byte.
CHECKS_PER_TIMEOUT = 4
LONGEST_CHECK_INTERVAL = 1.0


class _Watched:
    __slots__ = ("seen", "since", "timeout")

    def __init__(self, reader: StreamReader, timeout: float) -> None:
        self.seen, self.since, self.timeout = reader.total_bytes, time.monotonic(), timeout


class StallWatch:
    """The open bodies of one event loop, and the task that checks them."""

    def __init__(self) -> None:
        self._readers: dict[StreamReader, _Watched] = {}
        # Set while readers wait to be checked; the loop sleeps on it while there are none.
        self._wake = asyncio.Event()
        self.running = False

    def add(self, reader: StreamReader, timeout: float) -> None:
        self._readers[reader] = _Watched(reader, timeout)
        self._wake.set()

    def discard(self, reader: StreamReader) -> None:
        self._readers.pop(reader, None)

    def __len__(self) -> int:
        return len(self._readers)

    async def run(self) -> None:
        """Check the readers a few times per timeout, for as long as the event loop runs."""
        self.running = True
        try:
            while True:
                if not self._readers:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                shortest = min(watched.timeout for watched in self._readers.values())
                await asyncio.sleep(min(shortest / CHECKS_PER_TIMEOUT, LONGEST_CHECK_INTERVAL))
                self.check(time.monotonic())
        finally:
            self.running = False

    def check(self, now: float) -> None:
        """Note which readers received bytes; time out those silent for their timeout."""
        for reader, watched in list(self._readers.items()):
            if reader.total_bytes != watched.seen:
                watched.seen, watched.since = reader.total_bytes, now
            elif now - watched.since >= watched.timeout:
                del self._readers[reader]
                reader.set_exception(SocketTimeoutError("Timeout on reading data from socket"))


_watches: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, StallWatch]" = (
    weakref.WeakKeyDictionary()
)


def watch_of_loop() -> StallWatch:
    loop = asyncio.get_running_loop()
    watch = _watches.get(loop)
    if watch is None:
        watch = _watches[loop] = StallWatch()
    return watch


@contextmanager
def watching(response: ClientResponse | None, timeout: float) -> Iterator[None]:
    """While the body of `response` is read: this loop's watch times it out, not a timer
    re-armed per chunk. Without an aiohttp response (a body httpx2 decompresses) or a
    connection (the body already read), aiohttp's own timer stays."""
    connection = response.connection if response is not None else None
    protocol = connection.protocol if connection is not None else None
    watch = watch_of_loop()
    if response is None or protocol is None or not watch.running:
        yield
        return
    # Only this response: aiohttp sets the timeout afresh for the next request on the
    # connection. The timer armed now is cancelled with the next chunk, unarmed.
    protocol.read_timeout = None
    watch.add(response.content, timeout)
    try:
        yield
    finally:
        watch.discard(response.content)
