"""A newer export of a conversation imported before (services/imports/merging.py): its new
messages are added to the conversation already here, under the messages they follow, with
nothing written twice and every branch kept; the dry run counts them as new messages in
existing conversations; the background job does the same."""

import copy
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from conversations import background_jobs, selectors
from conversations.models import Conversation, ImportJob, Message
from tests.import_samples import CHATGPT, load, run_import

EXTRA_ANSWER = "Another version of the last answer."


def _exports() -> tuple[list, list]:
    """The ChatGPT sample before its last answer came (older), and after a second version
    of that answer was regenerated (newer): two messages the older one lacks."""
    newer = load(CHATGPT)
    (conversation,) = newer
    mapping, leaf = conversation["mapping"], conversation["current_node"]
    question = mapping[leaf]["parent"]
    extra = copy.deepcopy(mapping[leaf])
    extra["id"] = extra["message"]["id"] = "extra-answer"
    extra["message"]["content"]["parts"] = [EXTRA_ANSWER]
    extra["message"]["create_time"] += 60
    mapping["extra-answer"] = extra
    mapping[question]["children"].append("extra-answer")
    older = copy.deepcopy(newer)
    (old,) = older
    del old["mapping"][leaf], old["mapping"]["extra-answer"]
    old["mapping"][question]["children"] = []
    old["current_node"] = question
    return older, newer


def _tree(conversation) -> list[tuple]:
    """Every message as (role, text, its parent's text): the tree, ids aside."""
    messages = {m.id: m for m in Message.objects.filter(conversation=conversation)}
    return sorted(
        (m.role, m.content, messages[m.parent_id].content if m.parent_id else None)
        for m in messages.values()
    )


@pytest.mark.django_db
def test_a_newer_export_adds_its_new_messages_to_the_conversation(user, other_user):
    older, newer = _exports()
    (imported,) = run_import(user, older).conversations
    before = Message.objects.filter(conversation=imported).count()
    result = run_import(user, newer)
    assert not result.failures and result.new == 0
    assert (result.merged, result.merged_messages) == (1, 2)
    assert result.extended == [imported] and Conversation.objects.filter(owner=user).count() == 1
    assert Message.objects.filter(conversation=imported).count() == before + 2
    # The same tree as importing the newer export afresh: nothing twice, both versions kept.
    (fresh,) = run_import(other_user, newer).conversations
    assert _tree(imported) == _tree(fresh)
    imported.refresh_from_db()
    assert imported.has_branches
    # The export's branch on screen was one of the new messages: the conversation shows it.
    assert selectors.thread_messages(imported)[-1].content == _leaf_text(newer)


def _leaf_text(export: list) -> str:
    (conversation,) = export
    return conversation["mapping"][conversation["current_node"]]["message"]["content"]["parts"][0]


@pytest.mark.django_db
def test_the_dry_run_counts_new_messages_in_existing_conversations(user):
    older, newer = _exports()
    (imported,) = run_import(user, older).conversations
    before = Message.objects.count()
    result = run_import(user, newer, dry_run=True)
    assert (result.merged, result.merged_messages, result.duplicates) == (1, 2, 0)
    assert result.counts[0].outcome == "merged" and result.counts[0].messages == 2
    assert Message.objects.count() == before


@pytest.mark.django_db
def test_the_same_export_again_is_still_a_duplicate(user):
    _, newer = _exports()
    run_import(user, newer)
    result = run_import(user, newer)
    assert (result.merged, result.duplicates) == (0, 1)


@pytest.mark.django_db
def test_the_settings_page_says_how_many_new_messages_were_added(client, user):
    older, newer = _exports()
    run_import(user, older)
    client.force_login(user)
    upload = SimpleUploadedFile("conversations.json", json.dumps(newer).encode())
    response = client.post(
        "/settings/api/import/", {"file": upload}, headers={"HX-Request": "true"}
    )
    assert "New messages in existing conversations" in response.content.decode()
    assert "2 in 1 conversation" in response.content.decode()


@pytest.mark.django_db(transaction=True)
def test_a_background_job_adds_the_new_messages_too(api_client, user, settings, tmp_path):
    settings.IMPORT_JOB_MIN_BYTES, settings.IMPORT_JOB_DIR = 0, tmp_path / "imports"
    settings.CELERY_BROKER_URL, settings.RECALL_ENABLED = "", False
    older, newer = _exports()
    (imported,) = run_import(user, older).conversations
    upload = SimpleUploadedFile("conversations.json", json.dumps(newer).encode())
    response = api_client.post("/api/v1/import/", {"file": upload})
    assert background_jobs.wait_for_in_process_jobs(timeout=60)
    job = ImportJob.objects.get(uuid=response.json()["id"])
    assert job.status == "done", job.error
    assert (job.totals["merged_conversations"], job.totals["merged_messages"]) == (1, 2)
    assert job.messages_done == 2 and job.conversations_done == 0
    assert Conversation.objects.filter(owner=user).count() == 1
    assert "extra-answer" not in {m.content for m in Message.objects.filter(conversation=imported)}
    assert Message.objects.filter(conversation=imported, content=EXTRA_ANSWER).count() == 1
