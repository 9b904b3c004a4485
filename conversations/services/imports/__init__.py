"""Import: chatsite's own JSON export, ChatGPT's (`conversations.json`, or the ZIP of its
data export), Claude's `conversations.json` and Open WebUI's chat export, told apart by
their content.

The whole upload is read and checked before anything is written. Every conversation is
planned (every message of its tree, what was skipped and why); if any one is broken, the
import is refused as a whole, each failure naming the conversation and the message or node,
and nothing is written. A dry run stops there and answers the counts. Otherwise the new
conversations are written in one transaction: all of them or none.

Each imported conversation remembers its id in the source, so importing the same export
again passes over the conversations already here (counted as duplicates), and only new ones
are written. Imported conversations and messages get new uuids; everything else the format
carries is kept, timestamps and the branch on screen included.

`sources` reads the upload and tells the formats apart; `plans` holds what a conversation is
read into; `chatsite`, `chatgpt`, `claude` and `openwebui` read one format each, `trees`
orders the trees ChatGPT and Open WebUI export; `writing` writes a plan.
"""

from collections import Counter
from dataclasses import dataclass, field

from django.contrib.auth.models import User
from django.db import DatabaseError, transaction
from django.utils.translation import gettext

from conversations import selectors
from conversations.errors import ValidationFailed
from conversations.models import Conversation
from conversations.services.imports.plans import (
    SKIP_REASONS,
    ConversationPlan,
    ConversationSkipped,
    ModelLookup,
    require_storable,
)
from conversations.services.imports.sources import (
    ImportRejected,
    SourceFormat,
    Upload,
    upload_read,
)
from conversations.services.imports.writing import write_conversation
from conversations.storable import storable_text

__all__ = [
    "SKIP_REASONS",
    "ConversationCount",
    "ImportFailure",
    "ImportRejected",
    "ImportResult",
    "conversations_import",
]

# What became of each conversation of the upload.
NEW, DUPLICATE, EMPTY = "new", "duplicate", "empty"


@dataclass(frozen=True)
class ImportFailure:
    index: int  # 0-based position of the conversation in the upload
    title: str
    error: str  # a sentence naming the message or node and what is wrong with it
    source_id: str = ""  # the conversation's id in the source, when it has one


@dataclass(frozen=True)
class ConversationCount:
    """One conversation of the upload as the dry run and the result count it."""

    index: int
    title: str
    source: str  # the format's label: ChatGPT, Claude, ...
    source_id: str
    outcome: str  # NEW, DUPLICATE (imported before) or EMPTY (nothing to import)
    messages: int = 0
    branch_points: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # by SKIP_REASONS key
    missing_files: int = 0
    reason: str = ""  # why it is EMPTY


@dataclass
class ImportResult:
    dry_run: bool = False
    formats: list[str] = field(default_factory=list)
    counts: list[ConversationCount] = field(default_factory=list)
    conversations: list[Conversation] = field(default_factory=list)  # written
    failures: list[ImportFailure] = field(default_factory=list)
    other_files: int = 0  # files of a ZIP that hold no conversations

    def _new(self) -> list[ConversationCount]:
        return [count for count in self.counts if count.outcome == NEW]

    @property
    def new(self) -> int:
        return len(self._new())

    @property
    def duplicates(self) -> int:
        return sum(1 for count in self.counts if count.outcome == DUPLICATE)

    @property
    def empty(self) -> int:
        return sum(1 for count in self.counts if count.outcome == EMPTY)

    @property
    def messages(self) -> int:
        return sum(count.messages for count in self._new())

    @property
    def branch_points(self) -> int:
        return sum(count.branch_points for count in self._new())

    @property
    def missing_files(self) -> int:
        return sum(count.missing_files for count in self._new())

    @property
    def skipped(self) -> dict[str, int]:
        total: Counter = Counter()
        for count in self._new():
            total.update(count.skipped)
        return dict(total)

    @property
    def skipped_reasons(self) -> list[tuple[str, int]]:
        """The skipped nodes as (reason in words, how many), for the page."""
        return [(str(SKIP_REASONS[key]), number) for key, number in self.skipped.items()]

    @property
    def refused(self) -> bool:
        """Whether the import was refused (nothing was, or would be, written)."""
        return bool(self.failures)


@dataclass(frozen=True)
class _Planned:
    index: int
    source: SourceFormat
    plan: ConversationPlan


# --- Entry point -----------------------------------------------------------------------


def conversations_import(*, owner: User, data: bytes | str, dry_run: bool = False) -> ImportResult:
    """Import the new conversations of `data`, or (`dry_run`) only count them.

    ImportRejected when the upload is not an export at all; a result with `failures` (and
    nothing written) when some conversation of it is broken."""
    upload = upload_read(data)
    result = ImportResult(dry_run=dry_run, formats=upload.formats, other_files=upload.other_files)
    planned = _plan_all(upload, result)
    new = _without_duplicates(owner, planned, result)
    result.counts.sort(key=lambda count: count.index)
    if not result.failures and not dry_run:
        _write_all(owner, new, result)
    return result


def _plan_all(upload: Upload, result: ImportResult) -> list[_Planned]:
    models = ModelLookup()
    planned = []
    for index, (source, raw) in enumerate(upload.conversations):
        title, source_id = _identity(raw)
        try:
            plan = source.planner(raw, models)
            require_storable(plan)
        except ConversationSkipped as exc:
            count = ConversationCount(index, title, source.label, source_id, EMPTY)
            result.counts.append(_with_reason(count, exc.reason))
        except ValidationFailed as exc:
            result.failures.append(ImportFailure(index, title, exc.message, source_id))
        else:
            planned.append(_Planned(index, source, plan))
    return planned


def _without_duplicates(
    owner: User, planned: list[_Planned], result: ImportResult
) -> list[_Planned]:
    """The planned conversations not imported before (nor earlier in this upload)."""
    known = selectors.imported_source_ids(
        owner, [(item.source.name, item.plan.source_id) for item in planned if item.plan.source_id]
    )
    new = []
    for item in planned:
        key = (item.source.name, item.plan.source_id)
        duplicate = bool(item.plan.source_id) and key in known
        result.counts.append(_count(item, DUPLICATE if duplicate else NEW))
        if not duplicate:
            if item.plan.source_id:
                known.add(key)
            new.append(item)
    return new


def _write_all(owner: User, new: list[_Planned], result: ImportResult) -> None:
    """Every new conversation, in one transaction: a failure writes none of them."""
    item = None
    try:
        with transaction.atomic():
            for item in new:
                conversation = write_conversation(owner, item.plan, source=item.source.name)
                result.conversations.append(conversation)
    except DatabaseError as exc:
        result.conversations.clear()
        assert item is not None  # only a write fails with a database error
        detail = str(exc).splitlines()[0] if str(exc) else exc
        error = gettext("It could not be saved: %(detail)s") % {"detail": detail}
        title = item.plan.fields.get("title", "")
        result.failures.append(ImportFailure(item.index, title, error, item.plan.source_id))


def _count(item: _Planned, outcome: str) -> ConversationCount:
    plan = item.plan
    return ConversationCount(
        index=item.index,
        title=plan.fields.get("title", ""),
        source=item.source.label,
        source_id=plan.source_id,
        outcome=outcome,
        messages=len(plan.messages),
        branch_points=plan.branch_points,
        skipped=dict(plan.skipped),
        missing_files=plan.missing_files,
    )


def _with_reason(count: ConversationCount, reason: str) -> ConversationCount:
    return ConversationCount(**{**count.__dict__, "reason": reason})


def _identity(raw) -> tuple[str, str]:
    """The conversation's title and source id as an answer may show them, whatever is
    wrong with the rest of it."""
    if not isinstance(raw, dict):
        return "", ""
    chat = raw["chat"] if isinstance(raw.get("chat"), dict) else {}
    title = next(
        (value for value in (raw.get("title"), raw.get("name"), chat.get("title")) if value),
        "",
    )
    source_id = next((raw[name] for name in ("conversation_id", "id", "uuid") if raw.get(name)), "")
    # Shown in the answer, which must encode even when the title is what was wrong.
    title = storable_text(title[:200]) if isinstance(title, str) else ""
    return title, storable_text(source_id[:200]) if isinstance(source_id, str) else ""
