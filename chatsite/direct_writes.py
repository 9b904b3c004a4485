"""Twisted TCP writes that go to the socket at once when nothing is queued before them.

Twisted buffers every write and sends it on the next "writable" event: each websocket frame
daphne pushes costs an epoll registration, a loop turn, the send, and an epoll removal. A
busy server pushes thousands of frames a second, and each of those system calls also lets
another thread take the GIL and hold the event loop up. asyncio's own transports (and the
raw relay the bench compares against) try the socket first and only fall back to waiting
for "writable" when it cannot take everything; `install()` gives daphne's TCP connections
the same behaviour. Anything unusual (TLS, a closing connection, data already queued) goes
through Twisted's own write, so order and back-pressure stay Twisted's.
"""

from twisted.internet import tcp

_twisted_write = tcp.Connection.write


def _write(self: tcp.Connection, data: bytes) -> None:
    if (
        self.TLS
        or not self.connected
        or self.disconnecting
        or self._writeDisconnected
        or self._writeDisconnecting
        or self._tempDataLen
        or len(self.dataBuffer) > self.offset
        or not isinstance(data, bytes)  # Twisted's write raises the right error for it
    ):
        _twisted_write(self, data)
        return
    sent = self.writeSomeData(data)
    if isinstance(sent, Exception) or sent < 0:
        # Lost: Twisted's write queues it and its next doWrite reports the loss its own way.
        _twisted_write(self, data)
    elif sent < len(data):
        _twisted_write(self, data[sent:])


def install() -> None:
    # A deliberate patch of the method on the class.
    tcp.Connection.write = _write  # type: ignore[method-assign, assignment]
