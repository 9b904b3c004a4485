"""A loopback TCP proxy that a test can pause or cut, to fail Postgres or Redis for one app.

The shared services stay up for everyone else: only connections through the proxy suffer.
"""

import asyncio
import threading

from tests.live_server import free_port


class FaultProxy:
    """Forwards 127.0.0.1:<port> to `target`; `pause()` stalls every byte, `cut()` drops
    every connection and refuses new ones until `resume()`. A target host that is a folder
    is a Postgres Unix socket folder (the embedded server): the proxy forwards to the
    socket `<folder>/.s.PGSQL.<port>` in it."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._loop = asyncio.new_event_loop()
        self._flowing = asyncio.Event()
        self._refusing = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def url(self, scheme_and_user: str, path: str) -> str:
        return f"{scheme_and_user}127.0.0.1:{self.port}{path}"

    def __enter__(self) -> "FaultProxy":
        self._thread.start()
        self._call(self._start())
        return self

    def __exit__(self, *exc_info) -> None:
        self._call(self._drop_all())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def pause(self) -> None:
        self._call(self._set(flowing=False, refusing=False))

    def cut(self) -> None:
        self._call(self._set(flowing=False, refusing=True))
        self._call(self._drop_all())

    def resume(self) -> None:
        self._call(self._set(flowing=True, refusing=False))

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _start(self) -> None:
        self._flowing.set()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)

    async def _set(self, *, flowing: bool, refusing: bool) -> None:
        self._refusing = refusing
        (self._flowing.set if flowing else self._flowing.clear)()

    async def _drop_all(self) -> None:
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        host, port = self.target
        if host.startswith("/"):
            return await asyncio.open_unix_connection(f"{host}/.s.PGSQL.{port}")
        return await asyncio.open_connection(host, port)

    async def _accept(self, reader, writer) -> None:
        if self._refusing:
            writer.transport.abort()
            return
        try:
            up_reader, up_writer = await self._open_upstream()
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, up_writer))
        await asyncio.gather(
            self._pump(reader, up_writer), self._pump(up_reader, writer), return_exceptions=True
        )

    async def _pump(self, reader, writer) -> None:
        try:
            while data := await reader.read(65536):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
        finally:
            self._writers.discard(writer)
            writer.transport.abort()
