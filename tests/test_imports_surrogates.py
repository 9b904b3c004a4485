"""Text PostgreSQL cannot store, in a large file imported by a background job: a lone
surrogate escape refuses the job naming the conversation and the node, as the import of a
small file does, instead of reaching the database as "?" (what ijson's fast parser makes
of it) or failing as "not UTF-8"; a surrogate pair (an escaped emoji) imports as itself."""

import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from bench.imports import chatgpt_conversation
from conversations import background_jobs
from conversations.models import Conversation, ImportJob, Message

pytestmark = pytest.mark.django_db(transaction=True)

CONVERSATIONS = 500  # about 2.4 MB: the scan for surrogates reads it in many blocks
CHOSEN = 400  # past the first block


def _export(text: str) -> tuple[bytes, str]:
    """A ChatGPT export (escaped as json.dumps escapes: every non-ASCII character as \\u)
    whose conversation CHOSEN has `text` as its first question; and that node's id."""
    conversations = []
    for number in range(CONVERSATIONS):
        conversation, _ = chatgpt_conversation(number, turns=3)
        conversations.append(conversation)
    chosen = conversations[CHOSEN]
    node = next(n for n in chosen["mapping"].values() if n["message"] and n["parent"])
    node["message"]["content"]["parts"] = [text]
    data = json.dumps(conversations).encode()
    assert len(data) > 2 * 1024 * 1024
    return data, node["id"]


def _job(api_client, data: bytes) -> ImportJob:
    upload = SimpleUploadedFile("conversations.json", data, content_type="application/json")
    response = api_client.post("/api/v1/import/", {"file": upload})
    assert response.status_code == 202, response.json()
    assert background_jobs.wait_for_in_process_jobs(timeout=120)
    return ImportJob.objects.get(uuid=response.json()["id"])


@pytest.mark.parametrize("surrogate", ["\ud800", "\udc00"], ids=["high", "low"])
def test_a_lone_surrogate_fails_the_job_naming_conversation_and_node(
    api_client, user, in_background, surrogate
):
    data, node_id = _export(f"hi {surrogate} there")
    job = _job(api_client, data)
    assert job.status == "failed"
    (failure,) = job.failures
    assert failure["index"] == CHOSEN and failure["title"] == f"Bench conversation {CHOSEN}"
    assert failure["error"].startswith(f"Message {node_id} content has a character the database")
    assert f"#{CHOSEN + 1}" in job.error
    assert not Conversation.objects.exists() and not Message.objects.exists()


def test_an_escaped_surrogate_pair_imports_as_its_character(api_client, user, in_background):
    data, node_id = _export("hi \U0001f600 there")
    assert b"\\ud83d\\ude00" in data
    job = _job(api_client, data)
    assert job.status == "done", job.error
    assert Message.objects.filter(content="hi \U0001f600 there").count() == 1
