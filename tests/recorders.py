"""Subscribers for hub tests: they keep what the hub gave them, and when."""

import time


class Recorder:
    """A subscriber that keeps what it was given, and when."""

    def __init__(self) -> None:
        self.updates: list[tuple[float, str]] = []
        self.appended: list[list[str]] = []

    async def reply_changed(self, state) -> None:
        self.updates.append((time.monotonic(), state.content))

    async def messages_appended(self, html: str, uuids: list[str]) -> None:
        self.appended.append(uuids)


class SlowTab(Recorder):
    """A tab whose every update costs 30 ms of the event loop, as hundreds of sockets do."""

    async def reply_changed(self, state) -> None:
        await super().reply_changed(state)
        time.sleep(0.03)
