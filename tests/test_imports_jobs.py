"""Large uploads imported in the background (services/imports/import_jobs.py): through the
API (202 and the job's url) and the settings page (polled while it runs), to done with the
counts, or failed naming the conversation and node with nothing written; a second run of
the same file writes nothing; the streamed reading keeps memory well below the file's size.
Without a broker the job runs on a thread of this process, so these tests commit."""

import io
import json
import tracemalloc
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from bench.imports import chatgpt_export
from conversations import background_jobs
from conversations.models import Conversation, ImportedConversation, ImportJob, Message
from conversations.services.imports.plans import ModelLookup
from conversations.services.imports.results import Planned, conversation_plan
from conversations.services.imports.streams import upload_stream
from tests.import_samples import CHATGPT, CHATGPT_MODERN, load, run_import

BROKEN_NODE = "aaa297ba-e2da-440e-84f4-e62e7be8b003"


def _upload(data: bytes, name: str = "conversations.json") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="application/json")


def _finished(job_id) -> ImportJob:
    assert background_jobs.wait_for_in_process_jobs(timeout=60)
    return ImportJob.objects.get(uuid=job_id)


def _broken_modern() -> bytes:
    """CHATGPT_MODERN, then CHATGPT with a node whose parent is not in the mapping."""
    (raw,) = load(CHATGPT)
    raw["mapping"][BROKEN_NODE]["parent"] = "gone"
    return json.dumps([*load(CHATGPT_MODERN), raw]).encode()


@pytest.mark.django_db(transaction=True)
def test_a_large_upload_through_the_api_is_a_job_that_ends_done_with_the_counts(
    api_client, user, in_background
):
    expected = run_import(user, CHATGPT_MODERN.read_bytes(), dry_run=True)
    response = api_client.post("/api/v1/import/", {"file": _upload(CHATGPT_MODERN.read_bytes())})
    assert response.status_code == 202, response.json()
    assert response["Location"] == response.json()["url"]
    assert response.json()["status"] == "queued"
    _finished(response.json()["id"])
    body = api_client.get(response["Location"]).json()
    assert body["status"] == "done" and body["formats"] == "ChatGPT"
    assert (body["conversations_done"], body["messages_done"]) == (2, expected.messages)
    assert body["conversations_total"] == 2 and body["checked"] == len(load(CHATGPT_MODERN))
    assert body["totals"].get("empty", 0) == expected.empty
    assert Message.objects.filter(conversation__owner=user).count() == expected.messages
    assert not list(in_background.IMPORT_JOB_DIR.iterdir())  # the upload's file is gone


@pytest.mark.django_db(transaction=True)
def test_the_settings_page_polls_a_running_job_and_shows_how_it_ended(client, user, in_background):
    client.force_login(user)
    response = client.post(
        "/settings/api/import/",
        {"file": _upload(CHATGPT.read_bytes())},
        headers={"HX-Request": "true"},
    )
    assert 'hx-trigger="every 2s"' in response.content.decode()
    (job,) = ImportJob.objects.filter(owner=user)
    job = _finished(job.uuid)
    partial = client.get(f"/settings/api/imports/{job.uuid}/").content.decode()
    assert "imported 1 conversations (11 messages)" in partial
    assert "hx-trigger" not in partial  # done: the polling stops
    assert "imported 1 conversations" in client.get("/settings/api/").content.decode()


@pytest.mark.django_db
def test_the_page_shows_the_progress_of_the_writing_pass(client, user):
    job = ImportJob.objects.create(
        owner=user,
        file_name="big.json",
        file_size=10,
        status="running",
        checked=40,
        conversations_total=40,
        messages_total=800,
        conversations_done=10,
        messages_done=200,
    )
    client.force_login(user)
    partial = client.get(f"/settings/api/imports/{job.uuid}/").content.decode()
    assert "writing: 10 of 40 conversations (200 of 800 messages)" in partial
    assert 'hx-trigger="every 2s"' in partial


@pytest.mark.django_db
def test_another_users_job_is_not_found(client, api_client, other_user):
    job = ImportJob.objects.create(owner=other_user, file_name="theirs.json", file_size=1)
    client.force_login(other_user)
    client.logout()
    assert api_client.get(f"/api/v1/imports/{job.uuid}/").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_a_broken_conversation_fails_the_job_naming_it_and_writes_nothing(
    api_client, user, in_background
):
    response = api_client.post("/api/v1/import/", {"file": _upload(_broken_modern())})
    job = _finished(response.json()["id"])
    assert job.status == "failed"
    assert "#4 “Assist user with summary”" in job.error  # index 3, the fourth
    assert f"node '{BROKEN_NODE}' names parent 'gone'" in job.error
    (failure,) = job.failures
    assert failure["source_id"] == "d5dc5307-6807-41a0-8b04-4acee626eeb7"
    assert not Conversation.objects.exists() and not ImportedConversation.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_second_run_of_the_same_file_imports_nothing_new(api_client, user, in_background):
    first = api_client.post("/api/v1/import/", {"file": _upload(CHATGPT_MODERN.read_bytes())})
    assert _finished(first.json()["id"]).conversations_done == 2
    again = api_client.post("/api/v1/import/", {"file": _upload(CHATGPT_MODERN.read_bytes())})
    job = _finished(again.json()["id"])
    assert job.status == "done" and job.conversations_done == 0
    assert job.totals["duplicates"] == 2
    assert Conversation.objects.filter(owner=user).count() == 2


@pytest.mark.django_db(transaction=True)
def test_a_dry_run_job_counts_and_writes_nothing(api_client, user, in_background):
    upload = _upload(CHATGPT.read_bytes())
    response = api_client.post("/api/v1/import/", {"file": upload, "dry_run": True})
    job = _finished(response.json()["id"])
    assert job.status == "done" and (job.conversations_total, job.messages_total) == (1, 11)
    assert job.totals["skipped"] == {"placeholder": 1, "hidden": 1}
    assert not Conversation.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_chatgpt_zip_is_streamed_member_by_member(api_client, user, in_background):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("conversations.json", b"\xef\xbb\xbf" + CHATGPT_MODERN.read_bytes())
        archive.writestr("user.json", json.dumps({"email": "a@example.com"}))
        archive.writestr("file-abc.png", b"\x89PNG\r\n")
    upload = _upload(buffer.getvalue(), "export.zip")
    job = _finished(api_client.post("/api/v1/import/", {"file": upload}).json()["id"])
    assert job.status == "done" and job.conversations_done == 2
    assert job.totals["other_files"] == 2


@pytest.mark.django_db(transaction=True)
def test_a_file_that_is_not_json_fails_the_job_saying_so(api_client, user, in_background):
    response = api_client.post("/api/v1/import/", {"file": _upload(b'[{"mapping": {')})
    job = _finished(response.json()["id"])
    assert job.status == "failed" and "is not valid JSON" in job.error


@pytest.mark.django_db
def test_streaming_a_large_export_keeps_memory_far_below_its_size(user, tmp_path):
    path = tmp_path / "conversations.json"
    made = chatgpt_export(path, messages=60_000, turns=5)
    models, planned = ModelLookup(), 0
    tracemalloc.start()
    try:
        upload = upload_stream(path)
        for index, (source, raw) in enumerate(upload.conversations()):
            planned += isinstance(conversation_plan(index, source, raw, models), Planned)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert made["conversations"] > 4000 and planned == made["conversations"]
    assert made["bytes"] > 30_000_000
    assert peak < made["bytes"] / 20, (peak, made["bytes"])


@pytest.mark.django_db(transaction=True)
def test_a_batch_with_a_conversation_that_cannot_be_saved_keeps_those_before_it(user, tmp_path):
    """The writing pass writes a batch of conversations at a time; when one cannot be saved
    (here: another import took its source id in the meantime), the batch is written one
    conversation at a time, so those before it are kept and the failure names it."""
    from conversations.services.imports import import_jobs
    from conversations.services.imports.sources import ImportRejected

    path = tmp_path / "conversations.json"
    chatgpt_export(path, messages=200, turns=5)
    upload, models = upload_stream(path), ModelLookup()
    batch = [
        (conversation_plan(index, source, raw, models), source.name)
        for index, (source, raw) in enumerate(upload.conversations())
    ][:5]
    taken = batch[2][0].plan.source_id
    earlier = Conversation.objects.create(owner=user, title="imported elsewhere")
    ImportedConversation.objects.create(
        owner=user, conversation=earlier, source=batch[2][1], source_id=taken
    )
    job = ImportJob.objects.create(owner=user, file_name="c.json", file_size=1)
    with pytest.raises(ImportRejected) as refused:
        import_jobs._write_batch(job, batch)
    assert "#3" in str(refused.value) and "written before it are kept" in str(refused.value)
    assert job.conversations_done == 2
    written = Conversation.objects.filter(owner=user).exclude(pk=earlier.pk)
    assert written.count() == 2
    assert (
        sum(len(p.plan.messages) for p, _ in batch[:2])
        == Message.objects.filter(conversation__in=written).count()
    )
