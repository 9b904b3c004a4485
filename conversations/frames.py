"""The chat socket's frames from the browser, read strictly.

A frame is a JSON object (htmx's ws extension sends the composer's fields, plus `action`).
Whatever else arrives (not JSON, nested past reason, an array, a field of the wrong type,
an id that is not one) is a `BadFrame` naming what was wrong, which the socket answers
with a notice and stays open. Text fields come back storable (conversations/storable.py).
"""

import json
from typing import Any
from uuid import UUID

from django.utils.translation import gettext as _

from conversations.errors import ChatError
from conversations.storable import storable_text

# Longer frames (in characters) are answered with a notice. A frame past daphne's 1 MiB (in
# bytes) never arrives: autobahn drops the connection first (the client sees 1006).
MAX_FRAME_CHARS = 256 * 1024


class BadFrame(ChatError):
    code = "bad_frame"


def read_frame(text_data: str | None, bytes_data: bytes | None) -> dict[str, Any]:
    if bytes_data is not None or text_data is None:
        raise BadFrame(_("The server only reads text frames."))
    if len(text_data) > MAX_FRAME_CHARS:
        raise BadFrame(_("That message is too large to send."))
    try:
        data = json.loads(text_data)
    except (json.JSONDecodeError, RecursionError):
        # RecursionError: JSON nested deeper than the parser goes.
        raise BadFrame(_("The server could not read that request.")) from None
    if not isinstance(data, dict):
        raise BadFrame(_("The server could not read that request: it is not a JSON object."))
    return data


def text_field(data: dict[str, Any], name: str) -> str:
    """The field as text ("" when absent or null)."""
    value = data.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadFrame(_("The field “%(field)s” must be text.") % {"field": name})
    return storable_text(value)


def id_field(data: dict[str, Any], name: str) -> str:
    """The field as a message or upload id ("" when absent)."""
    value = text_field(data, name)
    if value and not _is_uuid(value):
        raise BadFrame(_("The field “%(field)s” is not a valid id.") % {"field": name})
    return value


def id_list_field(data: dict[str, Any], name: str) -> list[str]:
    """The field as ids: the ws extension sends one value as a string, several as a list."""
    value = data.get(name)
    values = value if isinstance(value, list) else [value]
    ids = [id_field({name: item}, name) for item in values]
    return [item for item in ids if item]


def _is_uuid(value: str) -> bool:
    try:
        UUID(value)
    except ValueError:
        return False
    return True
