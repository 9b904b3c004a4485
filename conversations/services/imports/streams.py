"""An upload read from its file as a stream, for the background import: flat memory
whatever the file's size, one conversation in memory at a time.

The file (or each JSON member of its ZIP, streamed out of the archive) is told apart as
`sources` tells a whole document: a list of ChatGPT's, Claude's or Open WebUI's
conversations, streamed item by item (`ijson.items(f, "item")`); chatsite's envelope, its
format and version read from the top-level keys and its `conversations` streamed; one
conversation (an Open WebUI chat), read whole. The format is settled by the first
conversation a format recognises, which is normally the first one of the file.

`conversations()` reads the file again each time it is called: the import checks every
conversation in one pass and writes in a second.

ijson's fast parser (yajl) does not keep a lone surrogate escape (`"\\ud800"`, which JSON
allows and PostgreSQL cannot store): it turns it into "?" or into bytes that are not UTF-8.
So each document is first scanned for such escapes, and one that has any is read by ijson's
exact (pure Python) parser, which keeps them for the check to refuse, naming the
conversation and the node, as the import of a small file does.
"""

import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import ijson  # type: ignore[import-untyped]
from django.utils.translation import gettext

from conversations.services.imports.assets import ZipAssets
from conversations.services.imports.sources import (
    CHATSITE,
    NO_CONVERSATIONS,
    NOT_AN_EXPORT,
    RECOGNISED,
    ImportRejected,
    SourceFormat,
    chatsite_envelope_check,
    holds_json,
    upload_part,
    zip_unpacked_limit,
)
from conversations.sizes import human_size

_ZIP_MAGIC = b"PK\x03\x04"
_BOM = b"\xef\xbb\xbf"
# ijson's scalar events: the values of chatsite's envelope keys.
_SCALARS = {"string", "number", "boolean", "null"}
# A list whose items no format recognises (not an export); an empty list is None.
_UNRECOGNISED = "unrecognised"
# ijson's pure Python parser: slow, but exact where yajl is not (lone surrogates).
_EXACT = ijson.get_backend("python")
# A surrogate escape, and a pair of them (one character, which yajl reads right).
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE_PAIR = re.compile(rb"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}")
# The scan's blocks, and how much of each is looked at again with the next (a pair's length).
_SCAN_BYTES = 256 * 1024
_PAIR_BYTES = 12


@dataclass(frozen=True)
class StreamedDocument:
    member: str  # its name in the ZIP; "" for the file itself
    source: SourceFormat
    prefix: str  # ijson's prefix of its conversations: "item", "conversations.item", ""
    # It has a lone surrogate escape (or what may be one): read by the exact parser.
    exact: bool = False


@dataclass
class StreamedUpload:
    path: Path
    documents: list[StreamedDocument] = field(default_factory=list)
    # Files of a ZIP that hold no conversations (profile, feedback, media).
    other_files: int = 0
    # The ZIP's media, for the images its conversations point at.
    assets: ZipAssets | None = None

    @property
    def formats(self) -> list[str]:
        return list(dict.fromkeys(document.source.label for document in self.documents))

    def conversations(self) -> Iterator[tuple[SourceFormat, object]]:
        """Every conversation of the upload, in file order, with the format reading it."""
        with _archive(self.path) as archive:
            for document in self.documents:
                with _opened(self.path, archive, document.member) as stream:
                    where = upload_part(document.member)
                    parser = _EXACT if document.exact else ijson
                    items = parser.items(stream, document.prefix, use_float=True)
                    for raw in _rejecting(items, where):
                        yield document.source, raw


def upload_stream(path: Path) -> StreamedUpload:
    """The upload in the file at `path`, its formats told; ImportRejected saying why when it
    is not an export. Its conversations are read later, by `conversations()`."""
    with open(path, "rb") as file:
        is_zip = file.read(len(_ZIP_MAGIC)) == _ZIP_MAGIC
    upload = StreamedUpload(path)
    if is_zip:
        _read_zip(upload)
    else:
        document = _document(path, None, "")
        if document == _UNRECOGNISED:
            raise ImportRejected(str(NOT_AN_EXPORT))
        if isinstance(document, StreamedDocument):
            upload.documents.append(document)
    if not upload.documents:
        raise ImportRejected(str(NO_CONVERSATIONS))
    return upload


def _read_zip(upload: StreamedUpload) -> None:
    limit, unpacked = zip_unpacked_limit(), 0
    upload.assets = ZipAssets(upload.path)
    with _archive(upload.path) as archive:
        assert archive is not None
        for member in sorted(archive.infolist(), key=lambda member: member.filename):
            if member.is_dir() or not holds_json(archive, member):
                upload.other_files += not member.is_dir()
                if not member.is_dir():
                    upload.assets.add(member)
                continue
            unpacked += member.file_size
            if unpacked > limit:
                # A ZIP bomb, or an export far larger than the upload limit allows.
                raise ImportRejected(
                    gettext("The ZIP unpacks to more than this server reads (%(limit)s).")
                    % {"limit": human_size(limit)}
                )
            document = _document(upload.path, archive, member.filename)
            if isinstance(document, StreamedDocument):
                upload.documents.append(document)
            else:
                upload.other_files += 1


def _document(path: Path, archive, member: str) -> StreamedDocument | str | None:
    """What one JSON document holds: its conversations' format and prefix; None for an empty
    list; _UNRECOGNISED for anything else."""
    where = upload_part(member)
    with _opened(path, archive, member) as stream:
        exact = _has_lone_surrogate(stream)
    parser = _EXACT if exact else ijson
    with _opened(path, archive, member) as stream:
        first = next(_rejecting(parser.parse(stream), where), ("", "", None))
    if first[1] == "start_array":
        source, seen = _recognised(path, archive, member, "item", parser)
        if source:
            return StreamedDocument(member, source, "item", exact)
        return _UNRECOGNISED if seen else None
    if first[1] != "start_map":
        return _UNRECOGNISED
    if _chatsite_envelope(path, archive, member, parser):
        return StreamedDocument(member, CHATSITE, "conversations.item", exact)
    source, _ = _recognised(path, archive, member, "", parser)
    return StreamedDocument(member, source, "", exact) if source else _UNRECOGNISED


def _recognised(
    path: Path, archive, member: str, prefix: str, parser
) -> tuple[SourceFormat | None, bool]:
    """The format of the first item under `prefix` a format recognises (None when none
    does), and whether there was any item at all."""
    seen = False
    with _opened(path, archive, member) as stream:
        items = parser.items(stream, prefix, use_float=True)
        for item in _rejecting(items, upload_part(member)):
            seen = True
            for source, recognises in RECOGNISED:
                if recognises(item):
                    return source, True
    return None, seen


def _chatsite_envelope(path: Path, archive, member: str, parser) -> bool:
    """Whether the object is chatsite's export (ImportRejected when it is in a format or a
    version we do not read), from its top-level keys: the conversations are not read."""
    found: dict = {}
    with _opened(path, archive, member) as stream:
        for prefix, event, value in _rejecting(parser.parse(stream), upload_part(member)):
            if prefix in ("format", "version") and event in _SCALARS:
                found[prefix] = value
            elif prefix == "conversations" and event in {"start_array", "start_map"} | _SCALARS:
                found["conversations"] = event == "start_array"
            if len(found) == 3:
                break
    if "format" not in found:
        return False
    chatsite_envelope_check(found["format"], found.get("version"))
    if not found.get("conversations"):
        raise ImportRejected(gettext('The export has no "conversations" list.'))
    return True


def _has_lone_surrogate(stream: IO[bytes]) -> bool:
    """Whether the JSON text has a surrogate escape outside a pair. An escaped backslash
    before "ud800" may be taken for one: that only costs the exact parser's time."""
    tail = b""
    while block := stream.read(_SCAN_BYTES):
        text = tail + block
        # The last few bytes are looked at again with the next block: a pair may be cut.
        last = len(text) - _PAIR_BYTES if len(block) == _SCAN_BYTES else len(text)
        if _lone_in(text, last):
            return True
        tail = text[-_PAIR_BYTES:]
    return False


def _lone_in(text: bytes, last: int) -> bool:
    if b"\\ud" not in text and b"\\uD" not in text:
        return False
    unpaired = _SURROGATE_PAIR.sub(lambda pair: b"_" * len(pair.group()), text)
    return any(found.start() < last for found in _SURROGATE.finditer(unpaired))


def _rejecting(values: Iterator, where: str) -> Iterator:
    """`values` with ijson's errors as ImportRejected naming where in the upload."""
    try:
        yield from values
    except ijson.JSONError as exc:
        detail = exc.args[0] if exc.args else ""
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        detail = (str(detail).strip().splitlines() or [""])[0][:200]
        raise ImportRejected(
            gettext("%(where)s is not valid JSON (%(error)s).") % {"where": where, "error": detail}
        ) from None
    except UnicodeDecodeError:
        raise ImportRejected(
            gettext("%(where)s is not UTF-8 text; exports are UTF-8 JSON.") % {"where": where}
        ) from None


@contextmanager
def _archive(path: Path) -> Iterator[zipfile.ZipFile | None]:
    with open(path, "rb") as file:
        if file.read(len(_ZIP_MAGIC)) != _ZIP_MAGIC:
            yield None
            return
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise ImportRejected(gettext("The file looks like a ZIP but cannot be opened.")) from None
    with archive:
        yield archive


@contextmanager
def _opened(path: Path, archive: zipfile.ZipFile | None, member: str) -> Iterator[IO[bytes]]:
    """The document's bytes, past a UTF-8 byte order mark (which ijson refuses)."""
    with archive.open(member) if archive is not None else open(path, "rb") as stream:
        if stream.peek(len(_BOM))[: len(_BOM)] == _BOM:  # type: ignore[attr-defined]
            stream.read(len(_BOM))
        yield stream
