"""Export (conversations/exports.py) and import (conversations/services/imports/)."""

import json
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from conversations import exports, services
from conversations.models import (
    Attachment,
    Conversation,
    ConversationSummary,
    Message,
    MessageStatus,
    Role,
)
from tests.factories import ChatModelFactory, ConversationFactory, MessageFactory, thread
from tests.test_attachments import tiny_png

CHATGPT_FILE = Path(__file__).parent / "data" / "chatgpt_conversations.json"


def _text(blocks) -> str:
    return b"".join(blocks).decode()


def _export(conversation, export_format="json") -> str:
    return _text(exports.export_conversations([conversation], export_format))


@pytest.fixture
def rich_conversation(conversation):
    """Branches, reasoning, usage, a failed reply, summaries and non-default parameters."""
    conversation.system_prompt = "Be brief."
    conversation.temperature = 0.3
    conversation.stop = ["END"]
    conversation.thinking_enabled = True
    conversation.thinking_budget = 2048
    conversation.title_from_user = True
    conversation.save()
    question, answer = thread(conversation, "What is 2+2?", "4")
    Message.objects.filter(pk=answer.pk).update(
        reasoning="Two and two make four.",
        model_name="fake-model",
        chat_model=conversation.chat_model,
        prompt_tokens=12,
        completion_tokens=3,
        reasoning_tokens=5,
        cached_tokens=0,
        duration_ms=420,
        finish_reason="stop",
        context={"messages": 2, "dropped_turns": 0},
        completed_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    MessageFactory(
        conversation=conversation,
        parent=question,
        role=Role.ASSISTANT,
        content="",
        status=MessageStatus.FAILED,
        error_code="timeout",
        error_text="The provider stopped responding.",
    )
    follow_up = MessageFactory(conversation=conversation, parent=answer, content="And 3+3?")
    first = ConversationSummary.objects.create(
        conversation=conversation, text="Arithmetic.", covers_through=answer, token_count=2
    )
    ConversationSummary.objects.create(
        conversation=conversation, previous=first, text="More.", covers_through=follow_up
    )
    return conversation


def _comparable(document: dict) -> dict:
    """An export with ids, uuids and the export time replaced by positions."""
    document = json.loads(json.dumps(document))
    document.pop("exported_at")
    for conversation in document["conversations"]:
        position = {m["id"]: index for index, m in enumerate(conversation["messages"])}
        conversation.pop("id")
        for message in conversation["messages"]:
            message["id"] = position[message["id"]]
            message["parent"] = position.get(message["parent"])
        for summary in conversation["summaries"]:
            summary["covers_through"] = position[summary["covers_through"]]
            summary["previous"] = position.get(summary["previous"])
    return document


# --- Export ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_json_export_keeps_the_tree_reasoning_usage_status_summaries_and_parameters(
    rich_conversation,
):
    document = json.loads(_export(rich_conversation))
    assert document["format"] == "chatsite.conversations" and document["version"] == 1
    exported = document["conversations"][0]
    assert exported["parameters"]["system_prompt"] == "Be brief."
    assert exported["parameters"]["stop"] == ["END"]
    assert exported["model"] == {"provider": "local", "name": "fake-model"}
    question, answer, failed, follow_up = exported["messages"]
    assert answer["parent"] == question["id"] and failed["parent"] == question["id"]
    assert follow_up["parent"] == answer["id"]
    assert answer["reasoning"] == "Two and two make four."
    assert answer["usage"]["prompt_tokens"] == 12 and answer["usage"]["reasoning_tokens"] == 5
    assert failed["status"] == "failed" and failed["error_code"] == "timeout"
    assert [s["text"] for s in exported["summaries"]] == ["Arithmetic.", "More."]
    assert exported["summaries"][1]["previous"] == answer["id"]


@pytest.mark.django_db
def test_json_export_writes_one_message_per_line(rich_conversation):
    assert _export(rich_conversation).count("\n") == 4


@pytest.mark.django_db
def test_markdown_export_shows_the_thread_on_screen_with_reasoning_collapsed(rich_conversation):
    markdown = _export(rich_conversation, "md")
    assert markdown.startswith("# A conversation\n")
    assert "> Be brief." in markdown
    assert "<details>\n<summary>Reasoning</summary>\n\nTwo and two make four." in markdown
    assert markdown.index("What is 2+2?") < markdown.index("And 3+3?")
    # The failed sibling is another branch, not the thread on screen.
    assert "stopped responding" not in markdown


@pytest.mark.django_db
def test_jsonl_export_is_one_fine_tuning_line_per_conversation(rich_conversation, user):
    other = ConversationFactory(owner=user, chat_model=rich_conversation.chat_model)
    thread(other, "Hello", "Hi there")
    lines = _text(exports.export_user_history(user, "jsonl")).splitlines()
    assert len(lines) == 2
    assert json.loads(lines[0]) == {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is 2+2?"},
            {"role": "assistant", "content": "4"},
            {"role": "user", "content": "And 3+3?"},
        ]
    }
    assert json.loads(lines[1])["messages"][1] == {"role": "assistant", "content": "Hi there"}


@pytest.mark.django_db
def test_exporting_everything_includes_only_the_owners_conversations(user, other_user):
    mine = ConversationFactory(owner=user, title="mine")
    ConversationFactory(owner=other_user, title="theirs")
    document = json.loads(_text(exports.export_user_history(user, "json")))
    assert [c["id"] for c in document["conversations"]] == [str(mine.uuid)]


@pytest.mark.django_db
def test_export_memory_stays_flat_over_five_thousand_messages(user, chat_model):
    conversation = ConversationFactory(owner=user, chat_model=chat_model)
    body = "word " * 200  # 1 KB a message, 5 MB in all
    Message.objects.bulk_create(
        Message(conversation=conversation, role=Role.USER, content=body) for _ in range(5_000)
    )
    size = 0
    tracemalloc.start()
    try:
        for block in exports.export_user_history(user, "json"):
            size += len(block)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert size > 5_000_000
    # Loose on purpose (the benchmark owns the real figures): well under the export's size.
    assert peak < size / 2, f"peak {peak:,} bytes for a {size:,}-byte export"


# --- Round trip ------------------------------------------------------------------------


@pytest.mark.django_db
def test_export_then_import_gives_the_same_conversation_back(rich_conversation, user):
    exported = json.loads(_export(rich_conversation))
    result = services.conversations_import(owner=user, data=json.dumps(exported).encode())
    assert not result.failures
    (imported,) = result.conversations
    assert imported.uuid != rich_conversation.uuid
    again = json.loads(_export(imported))
    assert _comparable(again) == _comparable(exported)


@pytest.mark.django_db
def test_imported_thread_on_screen_is_the_exported_one(rich_conversation, user):
    from conversations import selectors

    result = services.conversations_import(owner=user, data=_export(rich_conversation))
    (imported,) = result.conversations
    contents = [m.content for m in selectors.thread_messages(imported)]
    assert contents == ["What is 2+2?", "4", "And 3+3?"]


@pytest.mark.django_db
def test_a_reply_exported_mid_stream_imports_as_interrupted(conversation, user):
    (question,) = thread(conversation, "Hi")
    MessageFactory(
        conversation=conversation, parent=question, role=Role.ASSISTANT, status="streaming"
    )
    result = services.conversations_import(owner=user, data=_export(conversation))
    reply = result.conversations[0].messages.get(role=Role.ASSISTANT)
    assert reply.status == MessageStatus.INTERRUPTED


@pytest.mark.django_db
def test_import_leaves_the_model_empty_but_keeps_its_name_when_not_in_the_catalogue(
    conversation, user
):
    thread(conversation, "Hi", "Hello")
    document = json.loads(_export(conversation))
    for message in document["conversations"][0]["messages"]:
        message["model"] = {"provider": "nowhere", "name": "gone-model"}
        message["model_name"] = "gone-model"
    result = services.conversations_import(owner=user, data=json.dumps(document))
    reply = result.conversations[0].messages.get(role=Role.ASSISTANT)
    assert reply.chat_model is None and reply.model_name == "gone-model"


# --- ChatGPT ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_chatgpt_export_imports_every_branch_with_roles_times_and_reasoning(user):
    from conversations import selectors

    gpt4o_mini = ChatModelFactory(provider__slug="openai", name="gpt-4o-mini")
    result = services.conversations_import(owner=user, data=CHATGPT_FILE.read_bytes())
    assert not result.failures
    sourdough, haiku = result.conversations
    # Both answers to the first question are kept: the draft the user regenerated too.
    assert sourdough.messages.count() == 5
    assert sourdough.messages.filter(content__startswith="An older draft").exists()
    # current_node picks the regenerated answer's branch for the screen.
    messages = selectors.thread_messages(sourdough)
    assert [m.role for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[1].content.startswith("Not dead, just hungry")
    assert all(m.parent_id == (messages[i - 1].id if i else None) for i, m in enumerate(messages))
    assert messages[2].content == (
        "[image not included in the export]\n\nHere is a photo. How often should I feed it?"
    )
    assert messages[3].reasoning == "Room temperature matters; twice a day at 24 C."
    assert messages[3].status == MessageStatus.TRUNCATED
    assert messages[3].model_name == "o3" and messages[3].chat_model is None
    assert messages[0].created_at == datetime.fromtimestamp(1714550401, tz=UTC)
    assert sourdough.created_at == datetime.fromtimestamp(1714550400.123456, tz=UTC)
    assert sourdough.title == "Sourdough starter help"
    assert haiku.system_prompt == "You are a poet who writes only haiku."
    assert haiku.messages.get(role=Role.ASSISTANT).chat_model == gpt4o_mini


# --- Bad files -------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"this is not json", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b'{"hello": "world"}', "not a chatsite export"),
        (b"[]", "no conversations"),
        (b'{"format": "chatsite.conversations", "version": 99, "conversations": []}', "99"),
    ],
)
def test_an_unreadable_file_is_refused_with_a_reason_and_imports_nothing(user, data, reason):
    with pytest.raises(services.ImportRejected) as refused:
        services.conversations_import(owner=user, data=data)
    assert reason in refused.value.message
    assert not Conversation.objects.exists()


@pytest.mark.django_db
def test_one_broken_conversation_refuses_the_import_and_writes_nothing(rich_conversation, user):
    document = json.loads(_export(rich_conversation))
    good = document["conversations"][0]
    broken = json.loads(json.dumps(good))
    broken["title"] = "Broken"
    broken["messages"][3]["role"] = "wizard"
    document["conversations"] = [good, broken, good]
    before = Message.objects.count()
    result = services.conversations_import(owner=user, data=json.dumps(document))
    assert not result.conversations
    (failure,) = result.failures
    assert failure.index == 1 and failure.title == "Broken"
    assert failure.error == "Message 4 role must be one of system, user, assistant."
    assert Message.objects.count() == before
    assert Conversation.objects.filter(owner=user).count() == 1  # the original only


@pytest.mark.django_db
def test_a_chatgpt_conversation_with_a_broken_tree_is_reported(user):
    conversations = json.loads(CHATGPT_FILE.read_text())
    conversations[0]["mapping"]["user-2"]["parent"] = "missing-node"
    result = services.conversations_import(owner=user, data=json.dumps(conversations))
    assert not result.conversations and not Conversation.objects.exists()
    (failure,) = result.failures
    assert failure.title == "Sourdough starter help"
    assert "node 'user-2' names parent 'missing-node', which is not in it" in failure.error


# --- Images ----------------------------------------------------------------------------


@pytest.fixture
def illustrated(rich_conversation, settings, tmp_path):
    """The rich conversation with an image on its first question, uploaded as a user would."""
    settings.MEDIA_ROOT = tmp_path
    question = rich_conversation.messages.order_by("id").first()
    upload = SimpleUploadedFile("red dot.png", tiny_png(), "image/png")
    image = services.attachment_upload(owner=rich_conversation.owner, upload=upload)
    Attachment.objects.filter(pk=image.pk).update(message=question)
    return rich_conversation


@pytest.mark.django_db
def test_export_then_import_into_another_user_gives_the_images_back(illustrated, other_user):
    exported = json.loads(_export(illustrated))
    (image,) = exported["conversations"][0]["messages"][0]["attachments"]
    assert image["name"] == "red dot.png" and (image["width"], image["height"]) == (1, 1)
    result = services.conversations_import(owner=other_user, data=json.dumps(exported))
    assert not result.failures and result.missing_files == 0
    (imported,) = result.conversations
    (copy,) = Attachment.objects.filter(message__conversation=imported)
    assert copy.owner == other_user and copy.content_type == "image/png"
    with copy.file.open("rb") as file:
        assert file.read() == tiny_png()
    assert _comparable(json.loads(_export(imported))) == _comparable(exported)


@pytest.mark.django_db
def test_an_image_whose_file_is_gone_is_exported_without_bytes_and_reported_on_import(
    illustrated, other_user
):
    image = Attachment.objects.get(message__conversation=illustrated)
    Path(image.file.path).unlink()
    exported = json.loads(_export(illustrated))
    (document,) = exported["conversations"][0]["messages"][0]["attachments"]
    assert document["data"] is None and document["name"] == "red dot.png"
    result = services.conversations_import(owner=other_user, data=json.dumps(exported))
    assert not result.failures and result.missing_files == 1
    assert not Attachment.objects.filter(owner=other_user).exists()


@pytest.mark.django_db
def test_an_image_past_the_upload_limit_is_not_imported_but_counted(
    illustrated, other_user, settings
):
    exported = _export(illustrated)
    settings.ATTACHMENT_MAX_BYTES = len(tiny_png()) - 1
    result = services.conversations_import(owner=other_user, data=exported)
    assert result.missing_files == 1
    assert not Attachment.objects.filter(owner=other_user).exists()
