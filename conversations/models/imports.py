"""Where imported conversations came from: the source app's id of each, so importing the
same export again finds it already here (services/imports/ writes these rows), and the
background jobs that import large uploads."""

import uuid

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ImportedConversation(models.Model):
    """One conversation of another app's export (or of a chatsite export) imported as
    `conversation`. Deleting the conversation deletes this row, so it can be imported again."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(
        "conversations.Conversation", on_delete=models.CASCADE, related_name="import_sources"
    )
    # The format's name (chatsite, chatgpt, claude, openwebui) and the conversation's id in
    # it: ChatGPT's conversation_id, Claude's uuid, Open WebUI's chat id, chatsite's uuid.
    source = models.CharField(max_length=20)
    source_id = models.CharField(max_length=200)
    imported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # The import's duplicate check (selectors.imported_source_ids) reads through this
            # index; two imports of the same file at once: the second one's insert fails.
            models.UniqueConstraint(
                fields=["owner", "source", "source_id"], name="imported_conversation_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.source_id}"


class ImportJobStatus(models.TextChoices):
    QUEUED = "queued", _("Queued")
    RUNNING = "running", _("Running")
    DONE = "done", _("Done")
    FAILED = "failed", _("Failed")

    @classmethod
    def active(cls) -> frozenset[str]:
        """The statuses of a job the settings page keeps polling."""
        return frozenset({cls.QUEUED, cls.RUNNING})


class ImportJob(models.Model):
    """A large upload imported in the background (services/imports/import_jobs.py): the file
    waits on disk, a first pass checks every conversation (nothing written), a second writes
    the new ones, each in its own transaction. Progress is saved every few conversations."""

    # In the URL the settings page polls and the API answers.
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="import_jobs"
    )
    file_name = models.CharField(max_length=200)  # the upload's name, as the page shows it
    # Where the upload waits for the job (IMPORT_JOB_DIR); emptied once the file is removed.
    file_path = models.CharField(max_length=500, blank=True)
    file_size = models.PositiveBigIntegerField()
    dry_run = models.BooleanField(default=False)  # count only, write nothing
    # Only services/imports/import_jobs.py changes it, each step from the one before.
    status = models.CharField(
        max_length=10, choices=ImportJobStatus.choices, default=ImportJobStatus.QUEUED
    )
    formats = models.CharField(max_length=200, blank=True)  # "ChatGPT", once told
    checked = models.PositiveIntegerField(default=0)  # conversations the first pass has read
    # The new conversations and their messages: unknown (null) until the first pass ends.
    conversations_total = models.PositiveIntegerField(null=True, blank=True)
    messages_total = models.PositiveIntegerField(null=True, blank=True)
    conversations_done = models.PositiveIntegerField(default=0)  # written so far
    messages_done = models.PositiveIntegerField(default=0)
    # The first pass's other counts: duplicates, empty, branch_points, missing_files,
    # other_files, skipped (by SKIP_REASONS key).
    totals = models.JSONField(default=dict, blank=True)
    # Why it failed, naming the conversation and the node; and each broken conversation
    # (index, title, source_id, error), the first IMPORT_JOB_FAILURES_KEPT of them.
    error = models.TextField(blank=True)
    failures = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    # Saved with the progress while the job runs: a running job whose heartbeat is older
    # than IMPORT_JOB_STALE_SECONDS lost its worker, and the sweeper fails it.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            # The settings page's recent jobs (selectors.import_job_list_for_user).
            models.Index(fields=["owner", "-created_at"], name="import_job_owner_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.file_name} ({self.status})"

    @property
    def active(self) -> bool:
        return self.status in ImportJobStatus.active()

    @property
    def writing(self) -> bool:
        """Running its second pass: the totals are known."""
        return self.status == ImportJobStatus.RUNNING and self.conversations_total is not None
