"""One load level: `count` tabs (or bare provider clients) stream replies back to back for a
while, with the CPU of every process measured; the figures and a line for the log."""

import asyncio
import time

from bench import load, report
from bench.procs import CpuMeter, Proc

TPS = 20


class Levels:
    """Levels against one set of processes, each tab signed in as its conversation's owner."""

    def __init__(
        self,
        procs: dict[str, list[Proc]],
        session,
        *,
        provider_url: str,
        conversations: list[str],
        cookies: list[str],
        tokens: int,
        seconds: float,
    ) -> None:
        self.procs, self.session = procs, session
        self.conversations, self.cookies = conversations, cookies
        self.tokens, self.seconds = tokens, seconds
        self.provider_url = provider_url

    def tabs(self, kind: str, count: int, servers: list[Proc] | None = None, first: int = 0):
        if kind == "direct":
            return [load.DirectClient(self.session, self.provider_url) for _ in range(count)]
        servers = servers or self.procs["daphne" if kind == "chatsite" else kind]
        clients = []
        for i in range(count):
            server = servers[i % len(servers)]
            origin = f"http://127.0.0.1:{server.port}"
            if kind == "relay":
                url, headers = f"ws://127.0.0.1:{server.port}/ws/c/{i}/", {}
            else:
                uuid = self.conversations[first + i]
                url = f"ws://127.0.0.1:{server.port}/ws/c/{uuid}/"
                cookie = self.cookies[first + i]
                headers = {"Origin": origin, "Cookie": f"sessionid={cookie}"}
            clients.append(load.TabClient(self.session, url, headers))
        return clients

    async def level(
        self,
        kind: str,
        count: int,
        *,
        tokens: int | None = None,
        seconds: float | None = None,
        servers: list[Proc] | None = None,
        sequential: bool = False,
    ) -> dict:
        clients = self.tabs(kind, count, servers)
        if kind != "direct":
            await load.connect_all(clients)
            await asyncio.sleep(0.5)  # let the syncs land before the clock starts
        meter = CpuMeter([p for group in self.procs.values() for p in group])
        meter.start()
        with load.collector_paused():
            outcome = await load.hold(
                clients,
                tokens=tokens or self.tokens,
                tps=TPS,
                seconds=seconds or self.seconds,
                sequential=sequential,
            )
        cpu = meter.stop()
        await asyncio.gather(*(c.close() for c in clients))
        if kind == "chatsite":
            await replies_settled()
        summary = report.summarise(outcome) | {"cpu_cores": cpu}
        print(report.level_line(kind, summary), flush=True)
        return summary


async def replies_settled(timeout: float = 30.0) -> None:
    """Wait until the replies stopped at a level's end have ended. The next level sends on
    the same conversations, and a send there while the last reply still ends is refused
    (one reply in flight per conversation): under load a stop can take over a second, and
    each refused client sat out the whole next level, lowering its token rate."""
    from conversations.models import Message, MessageStatus

    def in_flight() -> int:
        return Message.objects.filter(status__in=MessageStatus.IN_FLIGHT).count()

    deadline = time.monotonic() + timeout
    while await asyncio.to_thread(in_flight) and time.monotonic() < deadline:
        await asyncio.sleep(0.25)
