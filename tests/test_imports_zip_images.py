"""Images inside a ChatGPT data export's ZIP (services/imports/assets.py): a user message's
asset pointer names a file of the ZIP, which becomes the message's attachment (the upload's
types and size limit); one the ZIP lacks stays a placeholder, counted as not included."""

import io
import json
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from bench.imports import chatgpt_conversation
from conversations import background_jobs, services
from conversations.models import Attachment, ImportJob, Message
from tests.test_attachments import tiny_png

PLACEHOLDER = "[image not included in the export]"


def _pointer(pointer: str) -> dict:
    return {"content_type": "image_asset_pointer", "asset_pointer": pointer, "size_bytes": 70}


def _export_zip() -> bytes:
    """One conversation: its first question shows a photo the ZIP carries (named by its id
    and the original name, as ChatGPT names them), its second one the ZIP does not."""
    conversation, _ = chatgpt_conversation(0, turns=2)
    questions = [
        node
        for node in conversation["mapping"].values()
        if node["message"] and node["message"]["author"]["role"] == "user"
    ]
    questions[0]["message"]["content"] = {
        "content_type": "multimodal_text",
        "parts": [_pointer("file-service://file-AbC123"), "What is this?"],
    }
    questions[1]["message"]["content"] = {
        "content_type": "multimodal_text",
        "parts": [_pointer("sediment://file_00000000missing"), "And this?"],
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("conversations-000.json", json.dumps([conversation]))
        archive.writestr("file-AbC123-red dot.png", tiny_png())
        archive.writestr("user.json", json.dumps({"id": "user-1"}))
    return buffer.getvalue()


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def _assert_imported(user) -> None:
    (image,) = Attachment.objects.filter(owner=user)
    assert image.message.content == "What is this?"
    assert (image.content_type, image.size, image.name) == (
        "image/png",
        len(tiny_png()),
        "file-AbC123-red dot.png",
    )
    assert (image.width, image.height) == (1, 1)
    with image.file.open("rb") as file:
        assert file.read() == tiny_png()
    missing = Message.objects.get(content__endswith="And this?")
    assert missing.content == f"{PLACEHOLDER}\n\nAnd this?" and not missing.attachments.exists()


@pytest.mark.django_db
def test_an_image_the_zip_carries_becomes_the_attachment_of_its_message(user):
    result = services.conversations_import(owner=user, data=_export_zip())
    assert not result.failures and result.missing_files == 1
    _assert_imported(user)


@pytest.mark.django_db
def test_an_image_over_the_upload_limit_stays_a_placeholder(user, settings):
    settings.ATTACHMENT_MAX_BYTES = len(tiny_png()) - 1
    result = services.conversations_import(owner=user, data=_export_zip())
    assert result.missing_files == 2 and not Attachment.objects.exists()
    assert Message.objects.filter(content=f"{PLACEHOLDER}\n\nWhat is this?").exists()


@pytest.mark.django_db(transaction=True)
def test_a_background_job_imports_the_zips_images_too(api_client, user, settings, tmp_path):
    settings.IMPORT_JOB_MIN_BYTES, settings.IMPORT_JOB_DIR = 0, tmp_path / "imports"
    settings.CELERY_BROKER_URL, settings.RECALL_ENABLED = "", False
    upload = SimpleUploadedFile("export.zip", _export_zip(), content_type="application/zip")
    response = api_client.post("/api/v1/import/", {"file": upload})
    assert background_jobs.wait_for_in_process_jobs(timeout=60)
    job = ImportJob.objects.get(uuid=response.json()["id"])
    assert job.status == "done", job.error
    assert job.totals["missing_files"] == 1
    _assert_imported(user)
