"""How a generator paces its reply: each batch of new text is published at once, then it
rests for the fragment interval, and its next read takes all that arrived meanwhile."""

import asyncio
import time

import pytest

from conversations import llm
from conversations.generation import ReplyRun
from conversations.hub import LiveReply, hub
from tests.recorders import Recorder, SlowTab


class ArrivingStream:
    """Tokens arriving at a steady rate, read as the provider's stream is: each read takes
    everything that arrived since the last one, and waits only when nothing did."""

    def __init__(self, tokens: list[str], *, per_second: float, quiet_first: float = 0.0):
        self.tokens, self.gap, self.quiet_first = tokens, 1 / per_second, quiet_first
        self.arrived: list[str] = []
        self.taken = 0
        self.arrival_times: list[float] = []
        self._more = asyncio.Event()
        self._producer: asyncio.Task | None = None

    async def _produce(self) -> None:
        await asyncio.sleep(self.quiet_first)
        for token in self.tokens:
            self.arrived.append(token)
            self.arrival_times.append(time.monotonic())
            self._more.set()
            await asyncio.sleep(self.gap)

    def __aiter__(self):
        self._producer = asyncio.get_running_loop().create_task(self._produce())
        return self

    async def __anext__(self) -> list[llm.StreamEvent]:
        while self.taken == len(self.arrived):
            if self.taken == len(self.tokens):
                raise StopAsyncIteration
            self._more.clear()
            await self._more.wait()
        batch, self.taken = self.arrived[self.taken :], len(self.arrived)
        return [llm.ContentDelta(token) for token in batch]


def _live() -> LiveReply:
    live = LiveReply(reply_id=1, uuid="r1", conversation_uuid="c")
    hub.register(live)
    return live


async def _watched_run(tab: Recorder) -> ReplyRun:
    run = ReplyRun(_live())
    await hub.subscribe("c", tab)
    return run


async def test_a_growing_reply_gets_at_most_one_fragment_per_interval(settings):
    settings.STREAM_FRAGMENT_INTERVAL = 0.05
    tab = Recorder()
    run = await _watched_run(tab)
    tokens = [f"{i} " for i in range(100)]
    started = time.monotonic()
    await run.consume(ArrivingStream(tokens, per_second=200))  # half a second
    elapsed = time.monotonic() - started
    assert len(tab.updates) <= elapsed / 0.05 + 2
    assert len(tab.updates) < len(tokens) / 4, "fragments carry several tokens each"
    assert tab.updates[-1][1] == "".join(tokens), "nothing is left behind"
    gaps = [b[0] - a[0] for a, b in zip(tab.updates, tab.updates[1:], strict=False)]
    assert min(gaps) > 0.03


async def test_slow_publishing_does_not_stretch_the_interval_between_fragments(settings):
    settings.STREAM_FRAGMENT_INTERVAL = 0.05
    tab = SlowTab()
    run = await _watched_run(tab)
    await run.consume(ArrivingStream([f"{i} " for i in range(200)], per_second=200))
    gaps = [b[0] - a[0] for a, b in zip(tab.updates[1:], tab.updates[2:], strict=False)]
    # Resting a whole interval after each 30 ms publish would space them 80 ms apart.
    assert sum(gaps) / len(gaps) < 0.065
    assert min(gaps) > 0.03


async def test_the_first_text_of_a_quiet_reply_goes_out_at_once(settings):
    settings.STREAM_FRAGMENT_INTERVAL = 0.5
    tab = Recorder()
    run = await _watched_run(tab)
    stream = ArrivingStream(["Hello"], per_second=1, quiet_first=0.2)
    await run.consume(stream)
    assert tab.updates == [(pytest.approx(stream.arrival_times[0], abs=0.02), "Hello")]
    assert run.first_token_at == pytest.approx(stream.arrival_times[0], abs=0.02)


async def test_a_stop_while_resting_keeps_exactly_the_text_that_was_published(settings):
    settings.STREAM_FRAGMENT_INTERVAL = 0.2
    tab = Recorder()
    run = await _watched_run(tab)
    consuming = asyncio.ensure_future(
        run.consume(ArrivingStream([f"{i} " for i in range(100)], per_second=100))
    )
    await asyncio.sleep(0.5)
    consuming.cancel()
    with pytest.raises(asyncio.CancelledError):
        await consuming
    assert len(tab.updates) >= 2
    assert run.live.content == tab.updates[-1][1], "no text was read and left unshown"
