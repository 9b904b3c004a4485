"""What an upload holds: its conversations and the format of each, told from the content,
never from the file name. An upload is one JSON document (chatsite's export, ChatGPT's,
Claude's or Open WebUI's) or a ZIP of them as ChatGPT and Claude deliver their data exports
(the conversations split across several JSON files, beside the account's profile, feedback
and media, which are not conversations and are passed over).
"""

import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.utils.translation import gettext, gettext_lazy

from conversations import exports
from conversations.errors import ValidationFailed
from conversations.services.imports.assets import ZipAssets
from conversations.services.imports.chatgpt import looks_like_chatgpt, plan_chatgpt
from conversations.services.imports.chatsite import plan_chatsite
from conversations.services.imports.claude import looks_like_claude, plan_claude
from conversations.services.imports.openwebui import looks_like_openwebui, plan_openwebui
from conversations.services.imports.plans import ConversationPlan, ModelLookup
from conversations.sizes import human_size

_ZIP_MAGIC = b"PK\x03\x04"
# How much of a ZIP member is read to tell JSON from the media beside it.
_SNIFF_BYTES = 64


class ImportRejected(ValidationFailed):
    """The file as a whole cannot be read; nothing was imported."""

    code = "import_rejected"
    default_message = gettext_lazy("That file cannot be imported.")


NOT_AN_EXPORT = gettext_lazy(
    "This is not a chatsite export, nor one from ChatGPT (conversations.json "
    "or its ZIP), Claude (conversations.json) or Open WebUI (a chat export)."
)
NO_CONVERSATIONS = gettext_lazy("The file holds no conversations.")


@dataclass(frozen=True)
class SourceFormat:
    name: str  # remembered with each imported conversation's source id
    label: str
    planner: Callable[[object, ModelLookup], ConversationPlan]


CHATSITE = SourceFormat("chatsite", "chatsite", plan_chatsite)
CHATGPT = SourceFormat("chatgpt", "ChatGPT", plan_chatgpt)
CLAUDE = SourceFormat("claude", "Claude", plan_claude)
OPEN_WEBUI = SourceFormat("openwebui", "Open WebUI", plan_openwebui)
# Each format with the test that recognises one of its conversations.
RECOGNISED: list[tuple[SourceFormat, Callable[[object], bool]]] = [
    (CHATGPT, looks_like_chatgpt),
    (CLAUDE, looks_like_claude),
    (OPEN_WEBUI, looks_like_openwebui),
]


@dataclass
class Upload:
    # Every conversation of the upload, with the format that reads it, in file order.
    conversations: list[tuple[SourceFormat, object]] = field(default_factory=list)
    # Files of a ZIP that hold no conversations (profile, feedback, media).
    other_files: int = 0
    # The ZIP's media, for the images its conversations point at.
    assets: ZipAssets | None = None

    @property
    def formats(self) -> list[str]:
        return list(dict.fromkeys(source.label for source, _ in self.conversations))


def upload_read(data: bytes | str) -> Upload:
    """The conversations in `data`; ImportRejected saying why when there are none."""
    if isinstance(data, bytes) and data.startswith(_ZIP_MAGIC):
        upload = _read_zip(data)
    else:
        upload = Upload()
        found = _conversations_in(json_parse(data))
        if found is None:
            raise ImportRejected(str(NOT_AN_EXPORT))
        upload.conversations = found
    if not upload.conversations:
        raise ImportRejected(str(NO_CONVERSATIONS))
    return upload


def json_parse(data: bytes | str, name: str = ""):
    where = upload_part(name)
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ImportRejected(
                gettext("%(where)s is not UTF-8 text; exports are UTF-8 JSON.") % {"where": where}
            ) from None
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise ImportRejected(
            gettext("%(where)s is not valid JSON (%(error)s at line %(line)s, column %(column)s).")
            % {"where": where, "error": exc.msg, "line": exc.lineno, "column": exc.colno}
        ) from None
    except RecursionError:
        raise ImportRejected(
            gettext("%(where)s is nested too deeply to be an export.") % {"where": where}
        ) from None


def upload_part(name: str = "") -> str:
    """How an error names the file, or one member of its ZIP."""
    return gettext("%(name)s in the ZIP") % {"name": name[:200]} if name else gettext("The file")


def _conversations_in(document) -> list[tuple[SourceFormat, object]] | None:
    """The document's conversations with their format; None when it is no export at all."""
    if isinstance(document, dict) and "format" in document:
        return [(CHATSITE, raw) for raw in _chatsite_conversations(document)]
    items = document if isinstance(document, list) else [document]
    if isinstance(document, list) and not document:
        return []
    for source, recognises in RECOGNISED:
        if any(recognises(item) for item in items):
            return [(source, item) for item in items]
    return None


def _chatsite_conversations(document: dict) -> list:
    chatsite_envelope_check(document.get("format"), document.get("version"))
    conversations = document.get("conversations")
    if not isinstance(conversations, list):
        raise ImportRejected(gettext('The export has no "conversations" list.'))
    return conversations


def chatsite_envelope_check(export_format, version) -> None:
    """ImportRejected unless this is chatsite's export format, in the version we read."""
    if export_format != exports.FORMAT:
        raise ImportRejected(
            gettext("Unknown export format %(format)s.") % {"format": repr(str(export_format)[:40])}
        )
    if version != exports.VERSION:
        raise ImportRejected(
            gettext("This export is version %(version)s; this server reads version %(ours)s.")
            % {"version": str(version)[:20], "ours": exports.VERSION}
        )


def _read_zip(data: bytes) -> Upload:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise ImportRejected(gettext("The file looks like a ZIP but cannot be opened.")) from None
    assets = ZipAssets(data)
    upload, unpacked = Upload(assets=assets), 0
    limit = zip_unpacked_limit()
    with archive:
        for member in sorted(archive.infolist(), key=lambda member: member.filename):
            if member.is_dir() or not holds_json(archive, member):
                upload.other_files += not member.is_dir()
                if not member.is_dir():
                    assets.add(member)
                continue
            unpacked += member.file_size
            if unpacked > limit:
                # A ZIP bomb, or an export far larger than the upload limit allows.
                raise ImportRejected(
                    gettext("The ZIP unpacks to more than this server reads (%(limit)s).")
                    % {"limit": human_size(limit)}
                )
            found = _conversations_in(json_parse(archive.read(member), member.filename))
            if not found:
                upload.other_files += 1
            else:
                upload.conversations.extend(found)
    return upload


def zip_unpacked_limit() -> int:
    """How many bytes the JSON members of a ZIP may unpack to, together."""
    return settings.IMPORT_ZIP_MAX_UNPACKED_BYTES


def holds_json(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> bool:
    """Whether the member starts like a JSON object or list (media never does)."""
    try:
        with archive.open(member) as stream:
            start = stream.read(_SNIFF_BYTES)
    except (zipfile.BadZipFile, RuntimeError, NotImplementedError):
        raise ImportRejected(
            gettext("%(name)s in the ZIP cannot be read (damaged or encrypted).")
            % {"name": member.filename[:200]}
        ) from None
    return start.decode("utf-8", "ignore").lstrip("\ufeff \t\r\n")[:1] in ("[", "{")
