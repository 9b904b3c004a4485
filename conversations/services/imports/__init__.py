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
are written; a newer export of a conversation imported before adds its new messages to it
(`merging`), counted as new messages in existing conversations. Imported conversations and
messages get new uuids; everything else the format carries is kept, timestamps and the
branch on screen included.

`sources` reads the upload and tells the formats apart; `plans` holds what a conversation is
read into; `assets` finds the images a ChatGPT ZIP carries for its messages; `chatsite`,
`chatgpt`, `claude` and `openwebui` read one format each, `trees` orders the trees ChatGPT
and Open WebUI export; `writing` writes a plan; `results` holds
what an import answers and plans one conversation for both paths. Large uploads go to
`import_jobs` instead: saved to a file, read as a stream (`streams`) in a background job,
checked whole in a first pass and written conversation by conversation in a second.
"""

from django.contrib.auth.models import User
from django.db import DatabaseError, transaction
from django.utils.translation import gettext

from conversations import selectors
from conversations.services.imports.merging import Merge, merge_plan
from conversations.services.imports.plans import SKIP_REASONS, ModelLookup
from conversations.services.imports.results import (
    DUPLICATE,
    MERGED,
    NEW,
    ConversationCount,
    ImportFailure,
    ImportResult,
    Planned,
    conversation_plan,
)
from conversations.services.imports.sources import ImportRejected, Upload, upload_read
from conversations.services.imports.writing import write_conversation, write_merge

__all__ = [
    "SKIP_REASONS",
    "ConversationCount",
    "ImportFailure",
    "ImportRejected",
    "ImportResult",
    "conversations_import",
]


# --- Entry point -----------------------------------------------------------------------


def conversations_import(*, owner: User, data: bytes | str, dry_run: bool = False) -> ImportResult:
    """Import the new conversations of `data`, or (`dry_run`) only count them.

    ImportRejected when the upload is not an export at all; a result with `failures` (and
    nothing written) when some conversation of it is broken."""
    upload = upload_read(data)
    result = ImportResult(dry_run=dry_run, formats=upload.formats, other_files=upload.other_files)
    planned = _plan_all(upload, result)
    new, merges = _without_duplicates(owner, planned, result)
    result.counts.sort(key=lambda count: count.index)
    if not result.failures and not dry_run:
        _write_all(owner, new, merges, result)
    return result


def _plan_all(upload: Upload, result: ImportResult) -> list[Planned]:
    models = ModelLookup()
    planned = []
    for index, (source, raw) in enumerate(upload.conversations):
        outcome = conversation_plan(index, source, raw, models, assets=upload.assets)
        if isinstance(outcome, Planned):
            planned.append(outcome)
        elif isinstance(outcome, ImportFailure):
            result.failures.append(outcome)
        else:
            result.counts.append(outcome)
    return planned


def _without_duplicates(
    owner: User, planned: list[Planned], result: ImportResult
) -> tuple[list[Planned], list[tuple[Planned, Merge]]]:
    """The planned conversations not imported before (nor earlier in this upload), and
    those imported before that the upload adds messages to."""
    here = selectors.imported_conversation_ids(
        owner, [item.key for item in planned if item.key is not None]
    )
    seen: set[tuple[str, str]] = set()
    new, merges = [], []
    for item in planned:
        key = item.key
        if key is not None and key in here and key not in seen:
            merge = merge_plan(here[key], item.plan)
            if merge.new:
                result.counts.append(item.count(MERGED, messages=len(merge.new)))
                merges.append((item, merge))
            else:
                result.counts.append(item.count(DUPLICATE))
        elif key is not None and key in seen:
            result.counts.append(item.count(DUPLICATE))
        else:
            result.counts.append(item.count(NEW))
            new.append(item)
        if key is not None:
            seen.add(key)
    return new, merges


def _write_all(
    owner: User, new: list[Planned], merges: list[tuple[Planned, Merge]], result: ImportResult
) -> None:
    """Every new conversation and new message, in one transaction: a failure writes none."""
    item = None
    try:
        with transaction.atomic():
            for item in new:
                conversation = write_conversation(owner, item.plan, source=item.source.name)
                result.conversations.append(conversation)
            for planned, merge in merges:
                item = planned  # named by the failure, should this one fail
                result.extended.append(write_merge(owner, merge))
    except DatabaseError as exc:
        result.conversations.clear()
        result.extended.clear()
        assert item is not None  # only a write fails with a database error
        detail = str(exc).splitlines()[0] if str(exc) else exc
        error = gettext("It could not be saved: %(detail)s") % {"detail": detail}
        title = item.plan.fields.get("title", "")
        result.failures.append(ImportFailure(item.index, title, error, item.plan.source_id))
