"""Importing other apps' exports (conversations/services/imports/), format by format:
ChatGPT's whole tree (every branch, current_node on screen, the pager), Claude's thinking,
Open WebUI's tree and reasoning. The samples are real or modelled on real exports:
tests/data/imports/SOURCES.md."""

import copy
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conversations import selectors, services
from conversations.models import Message, MessageStatus
from tests.factories import ChatModelFactory
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


def _chatgpt_visible_path(conversation: dict) -> list[str]:
    """Node ids from the root to current_node that ChatGPT shows, read from the file."""
    mapping, path, node_id = conversation["mapping"], [], conversation["current_node"]
    while node_id:
        message = mapping[node_id]["message"]
        hidden = message is None or message["metadata"].get("is_visually_hidden_from_conversation")
        if not hidden:
            path.append(node_id)
        node_id = mapping[node_id]["parent"]
    return path[::-1]


# --- ChatGPT: the whole tree -----------------------------------------------------------


@pytest.mark.django_db
def test_every_branch_of_a_chatgpt_mapping_is_imported(user):
    (raw,) = load(CHATGPT)
    with_text = [node for node in raw["mapping"].values() if node["message"]]
    visible = [
        n
        for n in with_text
        if not n["message"]["metadata"].get("is_visually_hidden_from_conversation")
    ]
    result = run_import(user, CHATGPT.read_bytes())
    (conversation,) = result.conversations
    # 13 nodes: the root placeholder and the hidden system message are skipped, the 11
    # others (the 6 of current_node's branch and the 5 the old importer dropped) are kept.
    assert len(raw["mapping"]) == 13 and len(visible) == 11
    assert conversation.messages.count() == 11
    (count,) = result.counts
    assert (count.messages, count.branch_points) == (11, 2)
    assert count.skipped == {"placeholder": 1, "hidden": 1}
    assert count.source_id == raw["conversation_id"]
    contents = set(conversation.messages.values_list("content", flat=True))
    assert {n["message"]["content"]["parts"][0] for n in visible} == contents
    assert conversation.has_branches


@pytest.mark.django_db
def test_current_node_is_the_branch_on_screen(user):
    (raw,) = load(CHATGPT)
    (conversation,) = run_import(user, CHATGPT.read_bytes()).conversations
    thread = selectors.thread_messages(conversation)
    expected = [
        raw["mapping"][key]["message"]["content"]["parts"][0] for key in _chatgpt_visible_path(raw)
    ]
    assert texts(thread) == expected
    assert len(thread) == 6 and thread[2].content == "hi again"
    # current_node is the second of two versions of the last answer, not the newest row.
    assert conversation.current_leaf_id == thread[-1].id


@pytest.mark.django_db
def test_the_pager_pages_through_imported_versions(user):
    (conversation,) = run_import(user, CHATGPT.read_bytes()).conversations
    thread = selectors.thread_messages(conversation)
    places = selectors.siblings_of(thread)
    # "hi again" is the second version of the turn after the first answer (an edit); the
    # joke is the second of two answers (a regenerate); the rest have one version.
    assert [(places[m.id].position, places[m.id].count) for m in thread] == [
        (1, 1),
        (1, 1),
        (2, 2),
        (1, 1),
        (1, 1),
        (2, 2),
    ]
    first_version = Message.objects.get(uuid=places[thread[2].id].previous_uuid)
    assert first_version.content == "so cool bro"
    services.conversation_switch_branch(conversation=conversation, message=first_version)
    other = selectors.thread_messages(conversation)
    assert texts(other)[2:] == [
        "so cool bro",
        "Thanks! What brings you here today?",
        "tell me a story",
        other[-1].content,
    ]
    # The story was still being written when exported: nobody will finish it.
    assert other[-1].status == MessageStatus.INTERRUPTED


@pytest.mark.django_db
def test_chatgpt_model_slugs_come_from_the_message_or_the_conversation(user):
    o4_mini = ChatModelFactory(provider__slug="openai", name="o4-mini")
    result = run_import(user, CHATGPT_MODERN.read_bytes())
    staging, pasta = result.conversations
    replies = list(staging.messages.filter(role="assistant").order_by("id"))
    assert [r.model_name for r in replies] == ["gpt-5-thinking", "o4-mini"]
    assert replies[1].chat_model == o4_mini and replies[0].chat_model is None
    assert pasta.messages.get(role="assistant").model_name == "gpt-5"


@pytest.mark.django_db
def test_chatgpt_times_are_kept(user):
    (raw, _, _) = load(CHATGPT_MODERN)
    (staging, _) = run_import(user, CHATGPT_MODERN.read_bytes()).conversations
    assert staging.created_at == datetime.fromtimestamp(raw["create_time"], tz=UTC)
    assert staging.updated_at == datetime.fromtimestamp(raw["update_time"], tz=UTC)
    first = staging.messages.order_by("id").first()
    assert first.created_at == datetime.fromtimestamp(1756000001.0, tz=UTC)


@pytest.mark.django_db
def test_custom_instructions_and_entries_without_a_mapping_are_counted_not_imported(user):
    result = run_import(user, CHATGPT_MODERN.read_bytes())
    staging, corrupted, pasta = result.counts
    assert staging.skipped == {"placeholder": 1, "hidden": 1}  # the user_editable_context
    assert "The user is an SRE." not in "".join(Message.objects.values_list("content", flat=True))
    assert corrupted.outcome == "empty" and "without a mapping" in corrupted.reason
    assert (result.new, result.empty, result.messages) == (2, 1, 6)


@pytest.mark.django_db
def test_reasoning_follows_its_branch_past_tool_nodes_and_images_are_reported_missing(user):
    result = run_import(
        user, (Path(__file__).parent / "data" / "chatgpt_conversations.json").read_bytes()
    )
    sourdough = result.conversations[0]
    answer = sourdough.messages.get(content__startswith="Twice a day")
    assert answer.reasoning == "Room temperature matters; twice a day at 24 C."
    photo = sourdough.messages.get(content__contains="Here is a photo")
    assert photo.content.startswith("[image not included in the export]")
    assert result.counts[0].missing_files == 1 and result.counts[0].skipped["tool"] == 1


# --- Claude ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_claude_thinking_becomes_the_replys_reasoning(user):
    (raw,) = load(CLAUDE)
    (conversation,) = run_import(user, CLAUDE.read_bytes()).conversations
    question, answer = conversation.messages.order_by("id")
    assert question.role == "user" and question.content == "Can you greet me?"
    assert answer.content == "Hello there! It's great to hear from you."
    assert answer.reasoning == raw["chat_messages"][1]["content"][0]["thinking"]
    assert conversation.title == "Thinking Demo"
    assert conversation.created_at == datetime(2025, 1, 1, tzinfo=UTC)
    assert answer.created_at == datetime(2025, 1, 1, 0, 0, 5, tzinfo=UTC)


@pytest.mark.django_db
def test_claude_reasoning_is_shown_collapsed_on_the_page(client, user):
    (conversation,) = run_import(user, CLAUDE.read_bytes()).conversations
    client.force_login(user)
    page = client.get(f"/c/{conversation.uuid}/").content.decode()
    block = page[page.index('<details class="message-reasoning-block"') :]
    block = block[: block.index("</details>")]
    assert "The user asked for a greeting." in block
    assert " open" not in block[: block.index(">")]


@pytest.mark.django_db
def test_claude_messages_that_name_their_parent_keep_both_versions(user):
    (raw,) = load(CLAUDE)
    question, answer = raw["chat_messages"]
    root = "00000000-0000-4000-8000-000000000000"
    question["parent_message_uuid"] = root
    answer["parent_message_uuid"] = question["uuid"]
    retry = copy.deepcopy(answer)
    retry.update(uuid="99999999-0000-0000-0000-000000000000")
    retry["content"] = [{"type": "text", "text": "Hi! Good to see you."}]
    raw["chat_messages"].append(retry)
    (conversation,) = run_import(user, [raw]).conversations
    thread = selectors.thread_messages(conversation)
    assert texts(thread) == ["Can you greet me?", "Hi! Good to see you."]
    place = selectors.siblings_of(thread)[thread[1].id]
    assert (place.position, place.count) == (2, 2)


# --- Open WebUI ------------------------------------------------------------------------


@pytest.mark.django_db
def test_an_open_webui_chat_keeps_its_usage_model_and_times(user):
    raw = load(OPEN_WEBUI)
    (conversation,) = run_import(user, OPEN_WEBUI.read_bytes()).conversations
    question, answer = conversation.messages.order_by("id")
    assert question.content == raw["messages"][0]["content"]
    assert (answer.prompt_tokens, answer.completion_tokens) == (26, 310)
    assert answer.model_name == "deepseek/deepseek-chat:free"
    assert answer.created_at == datetime.fromtimestamp(1744577557, tz=UTC)
    # The chat's own timestamp is in milliseconds.
    assert conversation.created_at == datetime.fromtimestamp(1744577557.127, tz=UTC)


@pytest.mark.django_db
def test_open_webui_reasoning_comes_from_output_items_and_tool_calls_are_skipped(user):
    result = run_import(user, OPEN_WEBUI_V2.read_bytes())
    reasoning, tool, simple = result.conversations
    answer = reasoning.messages.get(role="assistant")
    assert answer.content == "255"
    assert answer.reasoning == "15 * 17 = 15 * 10 + 15 * 7 = 150 + 105 = 255"
    assert tool.messages.get(role="assistant").content == "The weather in Paris is 18C with rain."
    assert result.counts[1].skipped == {"tool": 2}
    assert [c.source_id for c in result.counts] == ["reasoning-chat", "tool-chat", "simple-chat"]


@pytest.mark.django_db
def test_open_webui_reasoning_in_the_text_is_folded_out_of_it(user):
    (chat,) = [c for c in load(OPEN_WEBUI_V2) if c["id"] == "reasoning-chat"]
    del chat["chat"]["history"]["messages"]["ra2"]["output"]
    (conversation,) = run_import(user, [chat]).conversations
    answer = conversation.messages.get(role="assistant")
    assert (answer.content, answer.reasoning) == ("255", "Let me break this down...")


@pytest.mark.django_db
def test_open_webui_branches_are_kept_with_current_id_on_screen(user):
    raw = load(OPEN_WEBUI)
    messages = raw["history"]["messages"]
    question_id, answer_id = list(messages)
    regenerated = {**messages[answer_id], "id": "b2", "content": "It is the Goldwater Rule."}
    messages["b2"] = regenerated
    messages[question_id]["childrenIds"].append("b2")
    result = run_import(user, raw)
    (conversation,) = result.conversations
    assert result.counts[0].branch_points == 1 and conversation.messages.count() == 3
    thread = selectors.thread_messages(conversation)  # currentId: the first answer
    assert thread[-1].content == messages[answer_id]["content"]
    place = selectors.siblings_of(thread)[thread[-1].id]
    assert (place.position, place.count, bool(place.next_uuid)) == (1, 2, True)
