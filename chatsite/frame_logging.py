"""autobahn's debug-log highlighting, done only when a debug line is written.

For every frame daphne sends, autobahn's `sendData` passes `hltype(self.sendData)`,
`hlval(self.peer)` and `hlval(len(data))` to `log.debug`. Python evaluates those arguments
before the call, so each frame paid for a qualified-name lookup and three terminal colour
strings (click.style) that a disabled debug logger then threw away: ~5 µs a frame, ~3% of
a busy server's CPU. `install()` gives autobahn's protocol module versions that return a
placeholder, which renders the same highlighted text if a log line is ever formatted.
"""

from autobahn import util
from autobahn.websocket import protocol


class _Highlighted:
    """`render(*args, **kwargs)`, worked out when the log line is formatted."""

    __slots__ = ("_render", "_args", "_kwargs")

    def __init__(self, render, args: tuple, kwargs: dict) -> None:
        self._render, self._args, self._kwargs = render, args, kwargs

    def __str__(self) -> str:
        return self._render(*self._args, **self._kwargs)

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def __repr__(self) -> str:
        return str(self)


def _deferred(render):
    def highlight(*args, **kwargs) -> _Highlighted:
        return _Highlighted(render, args, kwargs)

    highlight.__wrapped__ = render
    return highlight


def install() -> None:
    """Defer the highlighting in autobahn's websocket protocol (idempotent)."""
    for name in ("hltype", "hlval"):
        if getattr(getattr(protocol, name), "__wrapped__", None) is None:
            setattr(protocol, name, _deferred(getattr(util, name)))
