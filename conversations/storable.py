"""Text as PostgreSQL can store it. A `text` column refuses NUL, and UTF-8 cannot encode a
lone surrogate (JSON may carry one as `\\ud800`): either would fail the whole write."""

import re

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def storable_text(text: str) -> str:
    """`text` without NULs, each lone surrogate replaced by U+FFFD (a Python string holds a
    surrogate only alone: a JSON pair is decoded into the one character it encodes)."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    return _LONE_SURROGATE.sub("\ufffd", text)


def unstorable_at(text: str) -> int | None:
    """The position of the first character PostgreSQL cannot store in `text`, or None."""
    found = _LONE_SURROGATE.search(text)
    nul = text.find("\x00")
    positions = [p for p in (found.start() if found else -1, nul) if p >= 0]
    return min(positions) if positions else None
