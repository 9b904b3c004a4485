"""Import: chatsite's own JSON export and ChatGPT's `conversations.json`.

Each conversation is read and validated in full before anything is written, then written in
its own transaction: a broken conversation writes nothing and is reported by position and
title, and the others in the file still import. A file that is not JSON, or not one of the
two shapes, is refused as a whole with a sentence saying why.

Imported conversations and messages get new uuids (importing your own export beside the
original must not collide); everything else the format carries is kept, timestamps included.

This module is the entry point and tells the two shapes apart; `plans` holds what a
conversation is read into and the typed reads that build it, `chatsite` and `chatgpt` read
one format each into a plan, and `writing` writes a plan.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from django.contrib.auth.models import User
from django.db import DatabaseError
from django.utils.translation import gettext, gettext_lazy

from conversations import exports
from conversations.errors import ValidationFailed
from conversations.models import Conversation
from conversations.services.imports.chatgpt import plan_chatgpt
from conversations.services.imports.chatsite import plan_chatsite
from conversations.services.imports.plans import ModelLookup, require_storable
from conversations.services.imports.writing import write_conversation
from conversations.storable import storable_text


class ImportRejected(ValidationFailed):
    """The file as a whole cannot be read; nothing was imported."""

    code = "import_rejected"
    default_message = gettext_lazy("That file cannot be imported.")


@dataclass(frozen=True)
class ImportFailure:
    index: int  # 0-based position of the conversation in the file
    title: str
    error: str


@dataclass
class ImportResult:
    conversations: list[Conversation] = field(default_factory=list)
    failures: list[ImportFailure] = field(default_factory=list)


# --- Entry point -----------------------------------------------------------------------


def conversations_import(*, owner: User, data: bytes | str) -> ImportResult:
    """Import every conversation in `data`; ImportRejected if the file is unreadable."""
    items, planner = _conversations_in(_parse(data))
    models = ModelLookup()
    result = ImportResult()
    for index, raw in enumerate(items):
        try:
            plan = planner(raw, models)
            require_storable(plan)
            result.conversations.append(write_conversation(owner, plan))
        except ValidationFailed as exc:
            result.failures.append(ImportFailure(index, _title_of(raw), exc.message))
        except DatabaseError as exc:
            detail = str(exc).splitlines()[0] if str(exc) else exc
            error = gettext("It could not be saved: %(detail)s") % {"detail": detail}
            result.failures.append(ImportFailure(index, _title_of(raw), error))
    return result


def _parse(data: bytes | str):
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ImportRejected(
                gettext("The file is not UTF-8 text; exports are UTF-8 JSON.")
            ) from None
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise ImportRejected(
            gettext("The file is not valid JSON (%(error)s at line %(line)s, column %(column)s).")
            % {"error": exc.msg, "line": exc.lineno, "column": exc.colno}
        ) from None
    except RecursionError:
        raise ImportRejected(gettext("The file is nested too deeply to be an export.")) from None


def _conversations_in(document) -> tuple[list, Callable]:
    """The raw conversations of the file and the planner that reads their format."""
    if isinstance(document, dict) and "format" in document:
        return _chatsite_conversations(document), plan_chatsite
    if isinstance(document, dict) and "mapping" in document:
        return [document], plan_chatgpt
    if isinstance(document, list) and document and _is_chatgpt(document[0]):
        return document, plan_chatgpt
    if isinstance(document, list) and not document:
        raise ImportRejected(gettext("The file holds no conversations."))
    raise ImportRejected(
        gettext("This is not a chatsite export (JSON) or a ChatGPT conversations.json file.")
    )


def _is_chatgpt(item) -> bool:
    return isinstance(item, dict) and "mapping" in item


def _chatsite_conversations(document: dict) -> list:
    if document.get("format") != exports.FORMAT:
        raise ImportRejected(
            gettext("Unknown export format %(format)s.")
            % {"format": repr(str(document.get("format"))[:40])}
        )
    version = document.get("version")
    if version != exports.VERSION:
        raise ImportRejected(
            gettext("This export is version %(version)s; this server reads version %(ours)s.")
            % {"version": str(version)[:20], "ours": exports.VERSION}
        )
    conversations = document.get("conversations")
    if not isinstance(conversations, list):
        raise ImportRejected(gettext('The export has no "conversations" list.'))
    if not conversations:
        raise ImportRejected(gettext("The file holds no conversations."))
    return conversations


def _title_of(raw) -> str:
    title = raw.get("title") if isinstance(raw, dict) else None
    # Shown in the answer, which must encode even when the title is what was wrong.
    return storable_text(title[:200]) if isinstance(title, str) else ""
