"""An import job whose worker died (services/imports/import_jobs.py,
`import_jobs_fail_stale`): stuck running past its heartbeat, it is failed saying what was
kept, its file removed, and importing the file again writes the rest."""

import json
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from conversations import background_jobs, services
from conversations.models import Conversation, ImportJob, ImportJobStatus
from tests.import_samples import CHATGPT_MODERN, load, run_import

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def jobs_dir(in_background, tmp_path):
    in_background.IMPORT_JOB_STALE_SECONDS = 600
    return tmp_path


def _running_job(user, directory, *, beat_seconds_ago: float, done: int = 0) -> ImportJob:
    """A job a worker was running, its file still waiting on disk."""
    path = directory / "waiting.upload"
    path.write_bytes(CHATGPT_MODERN.read_bytes())
    beat = timezone.now() - timedelta(seconds=beat_seconds_ago)
    return ImportJob.objects.create(
        owner=user,
        file_name="conversations.json",
        file_path=str(path),
        file_size=path.stat().st_size,
        status=ImportJobStatus.RUNNING,
        started_at=beat - timedelta(seconds=30),
        heartbeat_at=beat,
        conversations_total=2,
        conversations_done=done,
    )


def test_a_job_whose_heartbeat_stopped_fails_saying_what_was_kept(user, jobs_dir):
    # The dead worker had written the first of the file's two conversations.
    run_import(user, json.dumps(load(CHATGPT_MODERN)[:1]))
    job = _running_job(user, jobs_dir, beat_seconds_ago=601, done=1)
    assert services.import_jobs_fail_stale() == 1
    job.refresh_from_db()
    assert job.status == ImportJobStatus.FAILED and job.finished_at is not None
    assert "went away" in job.error and "1 conversation(s) written before are kept" in job.error
    assert job.file_path == "" and not (jobs_dir / "waiting.upload").exists()


def test_importing_the_file_again_after_a_dead_job_writes_the_rest(api_client, user, jobs_dir):
    run_import(user, json.dumps(load(CHATGPT_MODERN)[:1]))
    _running_job(user, jobs_dir, beat_seconds_ago=601, done=1)
    services.import_jobs_fail_stale()
    upload = SimpleUploadedFile("conversations.json", CHATGPT_MODERN.read_bytes())
    response = api_client.post("/api/v1/import/", {"file": upload})
    assert background_jobs.wait_for_in_process_jobs(timeout=60)
    retry = ImportJob.objects.get(uuid=response.json()["id"])
    assert retry.status == ImportJobStatus.DONE and retry.conversations_done == 1
    assert retry.totals["duplicates"] == 1
    assert Conversation.objects.filter(owner=user).count() == 2


def test_a_job_that_still_beats_is_left_running(user, jobs_dir):
    job = _running_job(user, jobs_dir, beat_seconds_ago=30)
    assert services.import_jobs_fail_stale() == 0
    job.refresh_from_db()
    assert job.status == ImportJobStatus.RUNNING and (jobs_dir / "waiting.upload").exists()


def test_a_dead_job_that_had_written_nothing_says_nothing_was_imported(user, jobs_dir):
    job = _running_job(user, jobs_dir, beat_seconds_ago=900)
    services.import_jobs_fail_stale()
    job.refresh_from_db()
    assert "Nothing was imported" in job.error


def test_a_finished_job_heartbeats_with_its_progress(user, jobs_dir, api_client):
    upload = SimpleUploadedFile("conversations.json", CHATGPT_MODERN.read_bytes())
    response = api_client.post("/api/v1/import/", {"file": upload})
    assert background_jobs.wait_for_in_process_jobs(timeout=60)
    job = ImportJob.objects.get(uuid=response.json()["id"])
    assert job.status == ImportJobStatus.DONE and job.heartbeat_at is not None
    assert job.heartbeat_at >= job.started_at
