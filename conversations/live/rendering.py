"""The HTML of a finished reply, the one piece of markup a reply in flight carries.

Sockets swap it in whole, and other processes receive it with the final state, so it is
rendered once, where the final save is (on a worker thread, in the same trip). The
presentation layer owns the markup: it hands its renderer over once at start-up
(conversations.apps), and this package calls it without knowing templates.
"""

from collections.abc import Callable

from conversations.models import Message

Renderer = Callable[[Message], str]

_renderer: Renderer | None = None


def use_renderer(render: Renderer) -> None:
    global _renderer
    _renderer = render


def final_html(reply: Message) -> str:
    if _renderer is None:
        raise RuntimeError("No reply renderer: conversations.apps hands one over at start-up.")
    return _renderer(reply)
