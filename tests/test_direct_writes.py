"""chatsite/direct_writes.py: daphne's TCP writes reach the socket at once, in order."""

import socket

import pytest
from twisted.internet import tcp

from chatsite import direct_writes


class RecordingReactor:
    """What a Twisted connection asks of its reactor: only the writer registrations matter."""

    def __init__(self) -> None:
        self.writers: list[object] = []

    def addWriter(self, selectable) -> None:  # noqa: N802 (Twisted's name)
        if selectable not in self.writers:
            self.writers.append(selectable)

    def removeWriter(self, selectable) -> None:  # noqa: N802
        if selectable in self.writers:
            self.writers.remove(selectable)

    def addReader(self, selectable) -> None:  # noqa: N802
        pass

    def removeReader(self, selectable) -> None:  # noqa: N802
        pass


@pytest.fixture
def direct_writes_installed():
    original = tcp.Connection.write
    direct_writes.install()
    yield
    tcp.Connection.write = original


@pytest.fixture
def connection(direct_writes_installed):
    """A Twisted TCP connection on one end of a socket pair; the test reads the other end."""
    ours, theirs = socket.socketpair()
    reactor = RecordingReactor()
    conn = tcp.Connection(ours, protocol=None, reactor=reactor)
    conn.connected = 1
    yield conn, theirs, reactor
    ours.close()
    theirs.close()


def read_available(peer: socket.socket) -> bytes:
    peer.setblocking(False)
    chunks = []
    try:
        while chunk := peer.recv(1 << 20):
            chunks.append(chunk)
    except BlockingIOError:
        pass
    return b"".join(chunks)


def test_a_write_reaches_the_socket_without_waiting_for_the_reactor(connection):
    conn, peer, reactor = connection
    conn.write(b"frame one")
    conn.write(b"frame two")
    assert read_available(peer) == b"frame oneframe two"
    assert reactor.writers == []  # nothing left for a "writable" event to send


def test_what_the_socket_cannot_take_waits_for_the_reactor_in_order(connection):
    conn, peer, reactor = connection
    big = bytes(range(256)) * 40_000  # ~10 MB: more than a socket pair's buffers hold
    conn.write(big)
    conn.write(b"after")
    assert reactor.writers == [conn]  # the rest goes out on "writable", as Twisted does
    received = read_available(peer)
    assert 0 < len(received) < len(big)
    while reactor.writers:
        conn.doWrite()
        received += read_available(peer)
    assert received == big + b"after"


def test_writes_on_a_closed_connection_are_dropped_as_twisted_drops_them(connection):
    conn, peer, reactor = connection
    conn.connected = 0
    conn.write(b"too late")
    assert read_available(peer) == b""
    assert reactor.writers == []


def test_a_lost_peer_is_reported_by_twisteds_next_write_attempt(connection):
    conn, peer, reactor = connection
    peer.close()
    conn.write(b"into the void")
    # Queued, so Twisted's doWrite finds the loss and reports it to the reactor its own way.
    assert reactor.writers == [conn]
    assert conn.doWrite() is not None
