"""Images in chatsite's JSON export, written and read: each message's attachments with the
file's own bytes (base64), its name, type, size and pixels, so that importing the export
gives the same images back. An image whose file is gone from the disk is written with
`"data": null`; the import then counts it as not included.

An export with many images is large (base64 adds a third); it is streamed a message at a
time like the rest, so only one message's images are in memory at once.
"""

import base64
import binascii
from dataclasses import dataclass

from conversations.images import image_size, image_type
from conversations.models import Attachment


def image_document(image: Attachment) -> dict:
    data = _file_bytes(image)
    width, height = image.width, image.height
    if width is None and data is not None:
        # Rows from before the upload kept the pixels: read them from the file.
        width, height = image_size(data) or (None, None)
    return {
        "name": image.name,
        "content_type": image.content_type,
        "size": image.size,
        "width": width,
        "height": height,
        "data": base64.b64encode(data).decode("ascii") if data is not None else None,
    }


def _file_bytes(image: Attachment) -> bytes | None:
    try:
        with image.file.open("rb") as file:
            return file.read()
    except (OSError, ValueError):  # gone from the disk (ValueError: no file at all)
        return None


@dataclass(frozen=True)
class ImageBytes:
    """An exported image's bytes as the import reads them: `data` None when the export
    does not carry them (or carries something that is not an image we accept)."""

    data: bytes | None
    content_type: str | None


def image_bytes(encoded) -> ImageBytes:
    """The bytes of an image document's `data`, and their type as the bytes say it (never
    as the document does)."""
    if not isinstance(encoded, str) or not encoded:
        return ImageBytes(None, None)
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return ImageBytes(None, None)
    content_type = image_type(data[:16])
    return ImageBytes(data if content_type else None, content_type)
