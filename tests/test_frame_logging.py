"""chatsite/frame_logging.py: autobahn highlights debug values only when a line is written."""

import pytest
from autobahn import util
from autobahn.websocket import protocol

from chatsite import frame_logging


@pytest.fixture
def counted_highlighting(monkeypatch):
    """autobahn's own highlighters, counting their calls, with the deferral installed over
    them; autobahn's module is put back afterwards."""
    calls = []

    def counting(render):
        def highlighter(*args, **kwargs):
            calls.append(render.__name__)
            return render(*args, **kwargs)

        highlighter.__name__ = render.__name__
        return highlighter

    monkeypatch.setattr(util, "hltype", counting(util.hltype))
    monkeypatch.setattr(util, "hlval", counting(util.hlval))
    monkeypatch.setattr(protocol, "hltype", util.hltype)
    monkeypatch.setattr(protocol, "hlval", util.hlval)
    frame_logging.install()
    return calls


class Peer:
    def sendData(self) -> None:  # noqa: N802 (autobahn's name)
        pass


def test_a_frame_sent_with_debug_off_formats_no_highlighting(counted_highlighting):
    # What sendData passes to its disabled log.debug for each frame.
    protocol.hltype(Peer().sendData), protocol.hlval("tcp:127.0.0.1:1"), protocol.hlval(9)
    assert counted_highlighting == []


def test_a_written_debug_line_shows_autobahn_s_own_highlighting(counted_highlighting):
    method = Peer().sendData
    line = "{func} sent {data_len} bytes".format(
        func=protocol.hltype(method), data_len=protocol.hlval(9, color="green")
    )
    assert counted_highlighting == ["hltype", "hlval"]  # formatted once each, for the line
    expected = f"{util.hltype(method)} sent {util.hlval(9, color='green')} bytes"
    assert line == expected
    assert "Peer.sendData" in line


def test_installing_twice_defers_once(counted_highlighting):
    frame_logging.install()
    str(protocol.hlval(1))
    assert counted_highlighting == ["hlval"]
