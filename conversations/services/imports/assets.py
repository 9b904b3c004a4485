"""Images a ChatGPT data export's ZIP carries beside its conversations: a message's part
`{"content_type": "image_asset_pointer", "asset_pointer": "file-service://file-AbC…"}` (or
`sediment://file_00…`) names a file of the ZIP whose name starts with that id
(`file-AbC…-photo.png`, `file_00…-sanitized.jpeg`, sometimes `.dat`; the type is read from
the bytes). Such an image on a user's message becomes an attachment of it, as if uploaded
(the same types and ATTACHMENT_MAX_BYTES); any other, or one the ZIP lacks, stays a
placeholder in the text, counted as not included.
"""

import io
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings

from conversations.images import image_size, image_type
from conversations.models import Role
from conversations.services.imports.plans import ConversationPlan, ImagePlan, MessagePlan

# Where a file's id may end in its name in the ZIP.
_ID_END = re.compile(r"[-.]")
IMAGE_NOT_INCLUDED = "[image not included in the export]"


def asset_id(pointer) -> str | None:
    """The file id an asset pointer names ("file-service://file-AbC" -> "file-AbC")."""
    if not isinstance(pointer, str) or "://" not in pointer:
        return None
    return pointer.split("://", 1)[1].strip("/") or None


@dataclass
class ZipAssets:
    """The files of an export's ZIP that are not JSON, found by the ids naming them. The
    archive is the upload's bytes (a small upload) or its file (a background job's)."""

    source: bytes | Path
    by_id: dict[str, zipfile.ZipInfo] = field(default_factory=dict)

    def add(self, member: zipfile.ZipInfo) -> None:
        name = member.filename.rsplit("/", 1)[-1]
        # Every prefix ending before a "-" or ".": the id itself contains "-" or "_".
        for found in _ID_END.finditer(name):
            self.by_id.setdefault(name[: found.start()], member)
        self.by_id.setdefault(name, member)

    def read(self, file_id: str) -> bytes | None:
        member = self.by_id.get(file_id)
        if member is None or member.file_size > settings.ATTACHMENT_MAX_BYTES:
            return None
        opened = io.BytesIO(self.source) if isinstance(self.source, bytes) else self.source
        with zipfile.ZipFile(opened) as archive:
            return archive.read(member)


def assets_attach(plan: ConversationPlan, assets: ZipAssets | None) -> None:
    """Each asset of a user's message that the ZIP carries becomes its image, in place of
    the placeholder the reader put in its text."""
    if assets is None or not assets.by_id:
        return
    for message in plan.messages:
        if message.fields.get("role") != Role.USER:
            continue
        for file_id in message.asset_ids:
            image = _image(assets, file_id)
            if image is not None:
                message.images.append(image)
                _drop_placeholder(message)
                plan.missing_files -= 1


def _image(assets: ZipAssets, file_id: str) -> ImagePlan | None:
    data = assets.read(file_id)
    content_type = image_type(data[:16]) if data else None
    if data is None or content_type is None:
        return None
    width, height = image_size(data) or (None, None)
    name = assets.by_id[file_id].filename.rsplit("/", 1)[-1][:200]
    fields = {
        "content_type": content_type,
        "size": len(data),
        "name": name,
        "width": width,
        "height": height,
    }
    return ImagePlan(data, fields)


def _drop_placeholder(message: MessagePlan) -> None:
    pieces = message.fields["content"].split("\n\n")
    if IMAGE_NOT_INCLUDED in pieces:
        pieces.remove(IMAGE_NOT_INCLUDED)
    message.fields["content"] = "\n\n".join(pieces)
