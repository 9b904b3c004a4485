"""Images users attach to their messages.

The type comes from the file's first bytes, never from the name or the client's content
type: the file is later served back with that type and sent to a provider as a data URL.
"""

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.utils.translation import gettext, gettext_lazy

from conversations.errors import ValidationFailed
from conversations.models import Attachment
from conversations.sizes import human_size

ALLOWED_TYPES = gettext_lazy("PNG, JPEG, GIF or WebP")


def image_type(head: bytes) -> str | None:
    """The image content type that `head` (a file's first bytes) starts, if we accept it."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return None


def attachment_upload(*, owner, upload: UploadedFile) -> Attachment:
    """Store an uploaded image for `owner`; it joins a message when that message is sent."""
    limit = settings.ATTACHMENT_MAX_BYTES
    if upload.size is None or upload.size > limit:
        raise ValidationFailed(
            gettext("That image is too large (the limit is %(limit)s).")
            % {"limit": human_size(limit)}
        )
    if not upload.size:
        raise ValidationFailed(gettext("That file is empty."))
    upload.seek(0)
    content_type = image_type(upload.read(16))
    upload.seek(0)
    if content_type is None:
        raise ValidationFailed(
            gettext("That file is not an image we accept (%(types)s).") % {"types": ALLOWED_TYPES}
        )
    attachment = Attachment(owner=owner, content_type=content_type, size=upload.size)
    # Our own name: the client's file name never reaches the disk.
    upload.name = f"{attachment.uuid}.{content_type.split('/')[1]}"
    attachment.file = upload
    attachment.save()
    return attachment
