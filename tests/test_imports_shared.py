"""What every import format shares: the format told from the content, the dry run (API and
settings page), duplicates, refusals that name the conversation and node and write nothing,
ChatGPT's ZIP, and round trips through chatsite's own export and Open WebUI's."""

import io
import json
import zipfile

import pytest

from conversations import selectors, services
from conversations.models import Conversation, ImportedConversation, Message
from tests.import_samples import (
    CHATGPT,
    CHATGPT_MODERN,
    CLAUDE,
    OPEN_WEBUI,
    OPEN_WEBUI_V2,
    load,
    run_import,
    texts,
)

# --- Detection, dry run, duplicates ----------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("sample", "label"),
    [
        (CHATGPT, "ChatGPT"),
        (CLAUDE, "Claude"),
        (OPEN_WEBUI, "Open WebUI"),
        (OPEN_WEBUI_V2, "Open WebUI"),
    ],
)
def test_the_format_is_told_from_the_content_not_the_file_name(api_client, sample, label):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("notes.txt", sample.read_bytes(), content_type="text/plain")
    response = api_client.post("/api/v1/import/", {"file": upload})
    assert response.status_code == 201, response.json()
    assert response.json()["formats"] == [label]


@pytest.mark.django_db
def test_a_dry_run_answers_the_counts_and_writes_nothing(user):
    result = run_import(user, CHATGPT.read_bytes(), dry_run=True)
    assert result.dry_run and not result.conversations
    assert (result.new, result.messages, result.branch_points) == (1, 11, 2)
    assert result.skipped == {"placeholder": 1, "hidden": 1}
    assert not Conversation.objects.exists() and not ImportedConversation.objects.exists()


@pytest.mark.django_db
def test_importing_the_same_export_again_creates_no_duplicates(user, other_user):
    first = run_import(user, CHATGPT_MODERN.read_bytes())
    again = run_import(user, CHATGPT_MODERN.read_bytes())
    assert len(first.conversations) == 2 and not again.conversations
    assert (again.new, again.duplicates) == (0, 2)
    assert Conversation.objects.filter(owner=user).count() == 2
    # Someone else's import of the same export is theirs, and deleting an imported
    # conversation lets it be imported again.
    assert len(run_import(other_user, CHATGPT_MODERN.read_bytes()).conversations) == 2
    first.conversations[0].delete()
    assert [c.title for c in run_import(user, CHATGPT_MODERN.read_bytes()).conversations] == [
        "Deploying the staging cluster"
    ]


@pytest.mark.django_db
def test_a_conversation_listed_twice_in_one_upload_is_imported_once(user):
    (raw,) = load(CHATGPT)
    result = run_import(user, [raw, raw])
    assert len(result.conversations) == 1 and result.duplicates == 1


# --- Bad input: a clear refusal, nothing written ---------------------------------------


def _broken_chatgpt(change) -> list:
    """The modern sample (two good conversations) with the sample conversation changed."""
    (raw,) = load(CHATGPT)
    change(raw["mapping"])
    return [*load(CHATGPT_MODERN), raw]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "error"),
    [
        (
            lambda mapping: mapping["aaa297ba-e2da-440e-84f4-e62e7be8b003"].update(parent="gone"),
            "node 'aaa297ba-e2da-440e-84f4-e62e7be8b003' names parent 'gone'",
        ),
        (
            lambda mapping: mapping["aaa297ba-e2da-440e-84f4-e62e7be8b003"].update(
                parent="bda8a275-886d-4f59-b38c-d7037144f0d5"
            ),
            "is in a cycle",
        ),
        (
            lambda mapping: mapping.update({"aaa297ba-e2da-440e-84f4-e62e7be8b003": ["a list"]}),
            "Node 'aaa297ba-e2da-440e-84f4-e62e7be8b003' must be a JSON object",
        ),
    ],
    ids=["missing parent", "cycle", "wrong shape"],
)
def test_a_broken_tree_refuses_the_whole_import_naming_conversation_and_node(
    api_client, change, error
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    data = json.dumps(_broken_chatgpt(change)).encode()
    response = api_client.post("/api/v1/import/", {"file": SimpleUploadedFile("c.json", data)})
    assert response.status_code == 400
    body = response.json()
    (failure,) = body["failed"]
    assert failure["index"] == 3 and failure["title"] == "Assist user with summary"
    assert failure["source_id"] == "d5dc5307-6807-41a0-8b04-4acee626eeb7"
    assert error in failure["error"]
    assert body["imported"] == [] and not Conversation.objects.exists()


@pytest.mark.django_db
def test_text_the_database_cannot_store_refuses_the_import_naming_the_node(user):
    data = CHATGPT.read_text().replace('"hi again"', '"hi \\ud800 again"', 1)
    result = run_import(user, data)
    (failure,) = result.failures
    assert failure.error.startswith(
        "Message aaa236a3-cdfc-4eb1-b5c5-790c6641f880 content has a character the database"
    )
    assert not Conversation.objects.exists()


# --- The ZIP ---------------------------------------------------------------------------


def _chatgpt_zip() -> bytes:
    """A 2026-style ChatGPT data export: conversations split across JSON files, beside the
    account's profile, feedback, the HTML viewer and an image."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("conversations-000.json", CHATGPT.read_text())
        archive.writestr("conversations-001.json", CHATGPT_MODERN.read_text())
        archive.writestr("user.json", json.dumps({"id": "user-1", "email": "a@example.com"}))
        archive.writestr("message_feedback.json", "[]")
        archive.writestr("chat.html", "<html><body>chats</body></html>")
        archive.writestr("file-abc-photo.png", b"\x89PNG\r\n\x1a\n" + bytes(64))
    return buffer.getvalue()


@pytest.mark.django_db
def test_a_chatgpt_zip_imports_the_conversations_of_every_file(api_client, user):
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("export.zip", _chatgpt_zip(), content_type="application/zip")
    response = api_client.post("/api/v1/import/", {"file": upload})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert [c["title"] for c in body["imported"]] == [
        "Assist user with summary",
        "Deploying the staging cluster",
        "Weeknight pasta",
    ]
    assert body["totals"]["messages"] == 11 + 6 and body["totals"]["empty"] == 1
    assert body["totals"]["other_files"] == 4  # user.json, an empty list, the HTML, the image


@pytest.mark.django_db
def test_a_damaged_zip_is_refused(user):
    with pytest.raises(services.ImportRejected) as refused:
        run_import(user, _chatgpt_zip()[:200])
    assert "ZIP" in refused.value.message


# --- The settings page -----------------------------------------------------------------


@pytest.mark.django_db
def test_the_settings_page_checks_a_file_first_then_imports_it(client, user):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(user)
    checked = client.post(
        "/settings/api/import/",
        {"file": SimpleUploadedFile("c.json", CHATGPT.read_bytes()), "dry_run": "on"},
        headers={"HX-Request": "true"},
    ).content.decode()
    assert "Ready to import 1 conversation." in checked and "Nothing has been written" in checked
    assert "<dd>11</dd>" in checked and "<dd>2</dd>" in checked  # messages, branch points
    assert "hidden from the conversation: 1" in checked
    assert not Conversation.objects.exists()
    imported = client.post(
        "/settings/api/import/",
        {"file": SimpleUploadedFile("c.json", CHATGPT.read_bytes())},
        headers={"HX-Request": "true"},
    ).content.decode()
    assert "Imported 1 conversation." in imported and "Assist user with summary" in imported


# --- Round trip through chatsite's own export ------------------------------------------


def _exported(conversation) -> str:
    from conversations import exports

    return b"".join(exports.export_conversations([conversation], "json")).decode()


@pytest.mark.django_db
def test_an_imported_tree_survives_export_and_import_with_its_branch_on_screen(user, other_user):
    (original,) = run_import(user, CHATGPT.read_bytes()).conversations
    services.conversation_switch_branch(
        conversation=original, message=original.messages.get(content="so cool bro")
    )
    result = run_import(other_user, _exported(original))
    (copy_,) = result.conversations
    assert (result.counts[0].messages, result.counts[0].branch_points) == (11, 2)
    assert texts(selectors.thread_messages(copy_)) == texts(selectors.thread_messages(original))
    pairs = {
        (m.content, m.parent.content if m.parent else None, m.status)
        for m in Message.objects.filter(conversation=original)
    }
    assert {
        (m.content, m.parent.content if m.parent else None, m.status)
        for m in Message.objects.filter(conversation=copy_)
    } == pairs


@pytest.mark.django_db
def test_a_chatsite_export_imported_twice_is_imported_once(user, conversation):
    from tests.factories import thread

    thread(conversation, "Hi", "Hello")
    exported = _exported(conversation)
    assert len(run_import(user, exported).conversations) == 1
    again = run_import(user, exported)
    assert not again.conversations and again.duplicates == 1


@pytest.mark.django_db
def test_the_open_webui_export_keeps_the_tree_reasoning_and_branch_on_screen(user, other_user):
    from conversations import exports

    (original,) = run_import(user, CHATGPT.read_bytes()).conversations
    reply = original.messages.filter(role="assistant").order_by("id").first()
    Message.objects.filter(pk=reply.pk).update(reasoning="Greet back.\nKeep it short.")
    document = json.loads(b"".join(exports.export_conversations([original], "openwebui")))
    (chat,) = document
    tree = chat["chat"]["history"]["messages"]
    assert len(tree) == 11
    assert sum(1 for node in tree.values() if len(node["childrenIds"]) > 1) == 2
    result = run_import(other_user, document)
    assert result.formats == ["Open WebUI"]
    (copy_,) = result.conversations
    assert texts(selectors.thread_messages(copy_)) == texts(selectors.thread_messages(original))
    assert copy_.messages.get(content__startswith="Hello!").reasoning == (
        "Greet back.\nKeep it short."
    )
    assert (result.counts[0].messages, result.counts[0].branch_points) == (11, 2)
