"""Large uploads imported in the background, in flat memory: the upload is saved to a file
(IMPORT_JOB_DIR), an ImportJob row is queued, and a background job reads the file as a
stream (`streams`), one conversation in memory at a time, in two passes.

The first pass checks every conversation and counts it, writing nothing: if any one is
broken, the job fails naming the conversation and the node, and nothing is written (a dry
run stops after it either way). The second pass writes the new conversations, each whole
in its own transaction (a single one would hide the progress, and hold its locks, for the
whole file): a conversation is never half-written, and should a write fail (the same file
imported twice at once), the job fails naming it; what was written before stays, and
importing the file again writes the rest. Progress is saved every PROGRESS_EVERY
conversations, with a heartbeat: a job whose worker died (a restart, a crash) stops beating,
and `import_jobs_fail_stale` (the serving processes' sweeper, a worker's start) fails it,
with the same promise: every conversation written is whole, the rest is written by
importing the file again.
"""

import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.core.files.uploadedfile import UploadedFile
from django.db import DatabaseError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext

from conversations import background_jobs, selectors
from conversations.models import ImportJob, ImportJobStatus
from conversations.services.imports.merging import merge_plan
from conversations.services.imports.plans import ModelLookup
from conversations.services.imports.results import (
    ConversationCount,
    ImportFailure,
    Planned,
    conversation_plan,
)
from conversations.services.imports.sources import NO_CONVERSATIONS, ImportRejected
from conversations.services.imports.streams import StreamedUpload, upload_stream
from conversations.services.imports.writing import (
    write_conversation,
    write_conversations,
    write_merge,
)

log = logging.getLogger(__name__)

# Conversations between two saves of the job's progress.
PROGRESS_EVERY = 50
# The writing pass's batches: this many conversations, or messages, whichever comes first.
WRITE_CONVERSATIONS = 50
WRITE_MESSAGES = 5000
# ...or this many bytes of images (a chatsite export carries its images' files).
WRITE_IMAGE_BYTES = 32 * 1024 * 1024
# Source ids looked up at once for the duplicate check.
DUPLICATE_CHECK_BATCH = 500


def import_job_wanted(size: int) -> bool:
    """Whether an upload of `size` bytes is imported in the background (above
    IMPORT_JOB_MIN_BYTES) rather than while the request waits."""
    return size > settings.IMPORT_JOB_MIN_BYTES


def import_job_dir() -> Path:
    return Path(settings.IMPORT_JOB_DIR)


def import_job_create(*, owner: User, upload: UploadedFile, dry_run: bool = False) -> ImportJob:
    """Save the upload to a file of its own and queue the job that imports it."""
    directory = import_job_dir()
    directory.mkdir(parents=True, exist_ok=True)
    job = ImportJob(owner=owner, file_name=(upload.name or "")[:200], dry_run=dry_run)
    path = directory / f"{job.uuid}.upload"
    # Copied chunk by chunk: a large upload is already a temporary file, never in memory.
    with open(path, "wb") as file:
        for chunk in upload.chunks():
            file.write(chunk)
    job.file_path, job.file_size = str(path), path.stat().st_size
    job.save()
    background_jobs.enqueue(
        background_jobs.IMPORT_CONVERSATIONS, import_job_run, import_job_id=job.pk
    )
    return job


def import_job_run(*, import_job_id: int) -> ImportJob | None:
    """Run a queued job to its end (done or failed); None when it is not queued (a second
    delivery of the same job does nothing)."""
    now = timezone.now()
    claimed = ImportJob.objects.filter(pk=import_job_id, status=ImportJobStatus.QUEUED).update(
        status=ImportJobStatus.RUNNING, started_at=now, heartbeat_at=now
    )
    if not claimed:
        return None
    job = ImportJob.objects.get(pk=import_job_id)
    path = Path(job.file_path)
    try:
        _run(job)
    except _Swept:
        log.warning("import job %s was failed as stale while it still ran", job.pk)
    except ImportRejected as exc:
        _end(job, ImportJobStatus.FAILED, error=exc.message)
    except Exception:
        log.exception("import job %s failed", job.pk)
        _end(job, ImportJobStatus.FAILED, error=gettext("The import stopped on an internal error."))
    finally:
        path.unlink(missing_ok=True)
    return job


@dataclass
class _Check:
    """What the first pass found."""

    to_write: set[int] = field(default_factory=set)  # indexes of the new conversations
    # Indexes of conversations imported before that the file adds messages to -> their id.
    to_merge: dict[int, int] = field(default_factory=dict)
    messages: int = 0  # theirs, and the new messages of those merged
    failures: list[ImportFailure] = field(default_factory=list)
    failed: int = 0
    totals: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)


def _run(job: ImportJob) -> None:
    upload = upload_stream(Path(job.file_path))
    job.formats = ", ".join(upload.formats)[:200]
    check = _check(job, upload)
    if not job.checked:
        raise ImportRejected(str(NO_CONVERSATIONS))
    job.conversations_total, job.messages_total = len(check.to_write), check.messages
    job.totals = {
        **check.totals,
        "other_files": upload.other_files,
        "skipped": dict(check.skipped),
    }
    if check.failures:
        job.failures = [failure.__dict__ for failure in check.failures]
        _end(job, ImportJobStatus.FAILED, error=_refusal(check))
        return
    if not job.dry_run:
        _write(job, upload, check.to_write)
        _merge(job, upload, check.to_merge)
    _end(job, ImportJobStatus.DONE)


def _check(job: ImportJob, upload: StreamedUpload) -> _Check:
    """The first pass: every conversation planned and counted, nothing written."""
    check, models = _Check(), ModelLookup()
    seen: set[tuple[str, str]] = set()  # the source ids of the file's conversations so far
    waiting: list[Planned] = []  # planned, not yet checked against earlier imports
    for index, (source, raw) in enumerate(upload.conversations()):
        outcome = conversation_plan(index, source, raw, models, assets=upload.assets)
        if isinstance(outcome, Planned):
            waiting.append(outcome)
        elif isinstance(outcome, ImportFailure):
            check.failed += 1
            if len(check.failures) < settings.IMPORT_JOB_FAILURES_KEPT:
                check.failures.append(outcome)
        else:
            _tally(check, outcome, "empty")
        if len(waiting) >= DUPLICATE_CHECK_BATCH:
            _sort_new(job.owner, waiting, seen, check)
        job.checked = index + 1
        if job.checked % PROGRESS_EVERY == 0:
            _save_progress(job, "checked")
    _sort_new(job.owner, waiting, seen, check)
    return check


def _sort_new(
    owner: User, waiting: list[Planned], seen: set[tuple[str, str]], check: _Check
) -> None:
    """The waiting conversations counted as new or as imported before (or earlier in the
    file); emptied."""
    here = selectors.imported_conversation_ids(
        owner, [item.key for item in waiting if item.key is not None]
    )
    for item in waiting:
        key = item.key
        if key is not None and key in here and key not in seen:
            merge = merge_plan(here[key], item.plan)
            if merge.new:
                check.to_merge[item.index] = here[key]
                check.totals["merged_conversations"] += 1
                check.totals["merged_messages"] += len(merge.new)
                check.messages += len(merge.new)
            else:
                check.totals["duplicates"] += 1
        elif key is not None and key in seen:
            check.totals["duplicates"] += 1
        else:
            check.to_write.add(item.index)
            _tally(check, item.count("new"), None)
        if key is not None:
            seen.add(key)
    waiting.clear()


def _tally(check: _Check, count: ConversationCount, outcome: str | None) -> None:
    if outcome:
        check.totals[outcome] += 1
        return
    check.messages += count.messages
    check.totals["branch_points"] += count.branch_points
    check.totals["missing_files"] += count.missing_files
    check.skipped.update(count.skipped)


def _write(job: ImportJob, upload: StreamedUpload, to_write: set[int]) -> None:
    """The second pass: each new conversation read again and written whole, a batch of
    them at a time (a few statements per batch, not per conversation)."""
    models = ModelLookup()
    batch: list[tuple[Planned, str]] = []
    for index, (source, raw) in enumerate(upload.conversations()):
        if index not in to_write:
            continue
        planned = conversation_plan(index, source, raw, models, checked=True, assets=upload.assets)
        assert isinstance(planned, Planned)  # the first pass planned this very file
        batch.append((planned, source.name))
        if (
            len(batch) >= WRITE_CONVERSATIONS
            or sum(len(p.plan.messages) for p, _ in batch) >= WRITE_MESSAGES
            or sum(p.plan.image_bytes for p, _ in batch) >= WRITE_IMAGE_BYTES
        ):
            _write_batch(job, batch)
            batch = []
    _write_batch(job, batch)


def _merge(job: ImportJob, upload: StreamedUpload, to_merge: dict[int, int]) -> None:
    """The new messages of conversations imported before, one conversation at a time (they
    are few: most of a newer export is what was imported already)."""
    if not to_merge:
        return
    models = ModelLookup()
    for index, (source, raw) in enumerate(upload.conversations()):
        if index not in to_merge:
            continue
        planned = conversation_plan(index, source, raw, models, checked=True, assets=upload.assets)
        assert isinstance(planned, Planned)
        merge = merge_plan(to_merge[index], planned.plan)
        try:
            write_merge(job.owner, merge)
        except DatabaseError as exc:
            raise ImportRejected(_write_failure(job, planned, exc)) from None
        job.messages_done += len(merge.new)
        _save_progress(job, "messages_done")


def _write_batch(job: ImportJob, batch: list[tuple[Planned, str]]) -> None:
    """A batch in one transaction; should it fail, each of its conversations on its own,
    so the failure names the one that cannot be saved and the ones before it are kept."""
    if not batch:
        return
    try:
        by_source: dict[str, list[Planned]] = {}
        for planned, source in batch:
            by_source.setdefault(source, []).append(planned)
        with transaction.atomic():
            for source, planned_list in by_source.items():
                write_conversations(job.owner, [p.plan for p in planned_list], source=source)
    except DatabaseError:
        for planned, source in batch:
            try:
                write_conversation(job.owner, planned.plan, source=source)
            except DatabaseError as exc:
                raise ImportRejected(_write_failure(job, planned, exc)) from None
            _count_written(job, [planned])
        return
    _count_written(job, [planned for planned, _ in batch])


def _count_written(job: ImportJob, written: list[Planned]) -> None:
    before = job.conversations_done
    job.conversations_done += len(written)
    job.messages_done += sum(len(p.plan.messages) for p in written)
    if job.conversations_done // PROGRESS_EVERY != before // PROGRESS_EVERY:
        _save_progress(job, "conversations_done", "messages_done")


class _Swept(Exception):
    """The sweeper failed this job (its heartbeat looked dead): the run stops here."""


def _save_progress(job: ImportJob, *fields: str) -> None:
    job.heartbeat_at = timezone.now()
    values = {name: getattr(job, name) for name in (*fields, "heartbeat_at")}
    if not ImportJob.objects.filter(pk=job.pk, status=ImportJobStatus.RUNNING).update(**values):
        raise _Swept()


# What a run's end saves (the rest was saved with the progress, or never changes).
_END_FIELDS = (
    "status",
    "error",
    "finished_at",
    "file_path",
    "formats",
    "checked",
    "conversations_total",
    "messages_total",
    "conversations_done",
    "messages_done",
    "totals",
    "failures",
)


def _end(job: ImportJob, status: str, *, error: str = "") -> None:
    """The job's end, unless the sweeper ended it first."""
    job.status, job.error, job.finished_at = status, error, timezone.now()
    job.file_path = ""
    values = {name: getattr(job, name) for name in _END_FIELDS}
    ImportJob.objects.filter(pk=job.pk, status=ImportJobStatus.RUNNING).update(**values)


def import_jobs_fail_stale() -> int:
    """Fail every running job whose heartbeat is older than IMPORT_JOB_STALE_SECONDS: its
    worker died. Each conversation it wrote is whole (written in its own transaction), so
    the job is failed saying so, and its file removed; importing the file again writes the
    rest. How many were failed."""
    cutoff = timezone.now() - timedelta(seconds=settings.IMPORT_JOB_STALE_SECONDS)
    stale = ImportJob.objects.filter(status=ImportJobStatus.RUNNING).filter(
        Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    )
    failed = 0
    for job in stale:
        # Conditional on the heartbeat read: a job that beat meanwhile is alive after all.
        ended = ImportJob.objects.filter(
            pk=job.pk, status=ImportJobStatus.RUNNING, heartbeat_at=job.heartbeat_at
        ).update(
            status=ImportJobStatus.FAILED,
            error=_stale_error(job),
            finished_at=timezone.now(),
            file_path="",
        )
        if ended and job.file_path:
            Path(job.file_path).unlink(missing_ok=True)
        failed += ended
    return failed


def _stale_error(job: ImportJob) -> str:
    if not job.conversations_done:
        return gettext(
            "The import stopped: the process running it went away (a restart or a crash). "
            "Nothing was imported; import the file again."
        )
    return gettext(
        "The import stopped: the process running it went away (a restart or a crash). The "
        "%(done)s conversation(s) written before are kept, each whole; importing the file "
        "again writes the rest."
    ) % {"done": job.conversations_done}


def _refusal(check: _Check) -> str:
    first = check.failures[0]
    return gettext(
        "Nothing was imported: %(count)s conversation(s) of the file cannot be read. "
        "The first, #%(number)s %(title)s: %(error)s"
    ) % {
        "count": check.failed,
        "number": first.index + 1,
        "title": f"“{first.title}”" if first.title else "",
        "error": first.error,
    }


def _write_failure(job: ImportJob, planned: Planned, exc: DatabaseError) -> str:
    detail = (str(exc).splitlines() or [""])[0][:200]
    return gettext(
        "Conversation #%(number)s %(title)s could not be saved: %(detail)s. The %(done)s "
        "written before it are kept; importing the file again writes the rest."
    ) % {
        "number": planned.index + 1,
        "title": f"“{planned.title}”" if planned.title else "",
        "detail": detail,
        "done": job.conversations_done,
    }
