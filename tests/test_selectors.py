"""Reads: ownership, threads and the context a request carries."""

import re
from uuid import UUID

import pytest

from conversations import selectors
from conversations.context import context_budget, context_for_reply
from conversations.models import MessageStatus, Role
from conversations.tokens import estimate_message_tokens
from tests.factories import (
    ChatModelFactory,
    ConversationFactory,
    ConversationSummaryFactory,
    MessageFactory,
    long_thread,
    thread,
)


@pytest.mark.django_db
def test_conversation_of_another_user_does_not_exist_for_me(conversation, other_user):
    assert selectors.conversation_get_for_user_or_none(other_user, conversation.uuid) is None
    assert selectors.conversation_get_for_user_or_none(other_user, "not-a-uuid") is None
    assert selectors.conversation_get_for_user_or_none(conversation.owner, conversation.uuid)


@pytest.mark.django_db
def test_context_is_system_prompt_then_turns_in_order(conversation):
    conversation.system_prompt = "You are terse."
    conversation.save()
    messages = thread(conversation, "q1", "a1", "q2")
    reply = MessageFactory(
        conversation=conversation,
        role=Role.ASSISTANT,
        status=MessageStatus.PENDING,
        parent=messages[-1],
    )
    context = context_for_reply(reply)
    assert context.messages == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": "q2"},
    ]
    assert context.dropped_turns == 0


@pytest.mark.django_db
def test_context_never_carries_reasoning_or_failed_replies(conversation):
    question = MessageFactory(conversation=conversation, role=Role.USER, content="q1")
    MessageFactory(
        conversation=conversation,
        role=Role.ASSISTANT,
        parent=question,
        content="",
        status=MessageStatus.FAILED,
    )
    answer = MessageFactory(
        conversation=conversation,
        role=Role.ASSISTANT,
        parent=question,
        content="a1",
        reasoning="secret chain of thought",
    )
    follow_up = MessageFactory(
        conversation=conversation, role=Role.USER, parent=answer, content="q2"
    )
    reply = MessageFactory(
        conversation=conversation,
        role=Role.ASSISTANT,
        status=MessageStatus.PENDING,
        parent=follow_up,
    )
    context = context_for_reply(reply)
    assert [m["content"] for m in context.messages] == ["q1", "a1", "q2"]
    assert "secret" not in str(context.messages)


@pytest.mark.django_db
def test_context_follows_the_branch_not_siblings(conversation):
    root = MessageFactory(conversation=conversation, role=Role.USER, content="q1")
    MessageFactory(
        conversation=conversation, role=Role.ASSISTANT, parent=root, content="old answer"
    )
    newer = MessageFactory(
        conversation=conversation, role=Role.ASSISTANT, parent=root, content="new answer"
    )
    question = MessageFactory(conversation=conversation, role=Role.USER, parent=newer, content="q2")
    reply = MessageFactory(
        conversation=conversation,
        role=Role.ASSISTANT,
        status=MessageStatus.PENDING,
        parent=question,
    )
    contents = [m["content"] for m in context_for_reply(reply).messages]
    assert contents == ["q1", "new answer", "q2"]


@pytest.mark.django_db
@pytest.mark.parametrize("filler", ["lorem ipsum ", "长对话里的一段文字，"])
def test_a_turn_larger_than_the_window_after_a_model_switch_is_sent_cut(user, filler):
    """13,564 characters fitted the model it was sent to; the chat then moved to a 4,000
    token model. The request keeps its beginning and end, never exceeds the window, and
    the stored message stays whole."""
    large = ChatModelFactory(name="large", context_window=128_000, max_output=4096)
    small = ChatModelFactory(name="small", context_window=4_000, max_output=1_000)
    conversation = ConversationFactory(owner=user, chat_model=large, recall_enabled=False)
    text = "BEGIN " + (filler * 13_564)[: 13_564 - 10] + " END"
    *_, question = thread(conversation, "q1", "a1", text)
    conversation.chat_model = small
    conversation.save()
    reply = MessageFactory(
        conversation=conversation, role=Role.ASSISTANT, status=MessageStatus.PENDING,
        parent=question, chat_model=small,
    )  # fmt: skip
    context = context_for_reply(reply)
    sent = context.messages[-1]["content"]
    assert context.estimated_tokens <= context.budget
    assert request_tokens(context.messages) <= context.budget
    assert sent.startswith("BEGIN ") and sent.endswith(" END") and "characters cut" in sent
    assert context.cut["message_id"] == question.pk and context.cut["length"] == len(text)
    assert context.cut["characters"] > 0
    question.refresh_from_db()
    assert question.content == text


def request_tokens(messages: list[dict]) -> int:
    return sum(estimate_message_tokens(m["role"], m["content"]) for m in messages)


@pytest.mark.django_db
def test_a_reply_says_when_its_request_cut_a_message(client, user, conversation):
    messages = thread(conversation, "q1", "a1")
    messages[1].context = {
        "cut": {"message_id": messages[0].pk, "length": 13564, "characters": 9000}
    }
    messages[1].save()
    client.force_login(user)
    html = client.get(f"/c/{conversation.uuid}/").content.decode()
    assert "9,000 of its 13,564 characters were cut" in html


@pytest.mark.django_db
def test_oldest_turns_are_dropped_to_fit_the_window_and_counted(user, chat_model):
    chat_model.context_window = 1_000
    chat_model.max_output = 200
    chat_model.save()
    conversation = ConversationFactory(owner=user, chat_model=chat_model, system_prompt="Sys")
    texts = [f"turn {i} " + "lorem ipsum " * 40 for i in range(20)]  # ~125 tokens each
    messages = thread(conversation, *texts, "last question")
    reply = MessageFactory(
        conversation=conversation,
        role=Role.ASSISTANT,
        status=MessageStatus.PENDING,
        parent=messages[-1],
    )
    context = context_for_reply(reply)
    assert context.messages[0] == {"role": "system", "content": "Sys"}
    assert context.messages[-1]["content"] == "last question"
    assert context.estimated_tokens <= context_budget(conversation)
    assert context.dropped_turns > 0
    assert len(context.messages) - 1 + context.dropped_turns == 21
    kept = [m["content"] for m in context.messages[1:]]
    assert kept == (texts + ["last question"])[-len(kept) :], "the newest turns are kept, in order"


@pytest.mark.django_db
def test_each_reply_says_when_its_request_dropped_turns(client, user, conversation):
    messages = thread(conversation, "q1", "a1", "q2", "a2", "q3", "a3")
    messages[1].context = {"dropped_turns": 3}
    messages[1].save()
    messages[5].context = {"dropped_turns": 1}
    messages[5].save()
    client.force_login(user)
    html = client.get(f"/c/{conversation.uuid}/").content.decode()
    articles = {
        UUID(match[1]): match[0]
        for match in re.finditer(r'<article[^>]* id="m-([0-9a-f-]+)".*?</article>', html, re.S)
    }
    notes = {m.pk: "context-note" in articles[m.uuid] for m in messages}
    assert notes == {m.pk: m.pk in (messages[1].pk, messages[5].pk) for m in messages}
    assert "3 earlier messages were not sent" in articles[messages[1].uuid]
    assert "1 earlier message was not sent" in articles[messages[5].uuid]


@pytest.mark.django_db
def test_thread_messages_are_the_newest_of_the_thread_in_order(conversation):
    texts = [f"m{i}" for i in range(450)]
    thread(conversation, *texts)
    shown = selectors.thread_messages(conversation, limit=50)
    assert [m.content for m in shown] == texts[-50:]


@pytest.mark.django_db
def test_cjk_text_counts_about_a_token_per_character():
    from conversations.tokens import estimate_tokens

    assert estimate_tokens("你好世界") == 4
    assert estimate_tokens("hello world!") == 3
    assert estimate_tokens("") == 0


def _pending_reply(conversation, parent_id):
    return MessageFactory(
        conversation=conversation,
        role=Role.ASSISTANT,
        status=MessageStatus.PENDING,
        parent_id=parent_id,
    )


@pytest.mark.django_db
def test_context_walks_past_the_first_batches_to_the_summary(conversation):
    ids = long_thread(conversation, 400, words=2)
    summary = ConversationSummaryFactory(conversation=conversation, covers_through_id=ids[49])
    reply = _pending_reply(conversation, ids[-1])
    context = context_for_reply(reply)
    assert context.summary == summary
    assert context.messages[0]["content"].endswith(summary.text)
    assert [m["content"] for m in context.messages[1:]] == [
        f"turn {i} " + "lorem " * 2 for i in range(50, 400)
    ]
    assert context.dropped_turns == 0 and context.first_message_id == ids[50]


@pytest.mark.django_db
def test_turns_that_do_not_fit_are_counted_down_to_the_summary(user, chat_model):
    chat_model.context_window, chat_model.max_output = 3_000, 200
    chat_model.save()
    conversation = ConversationFactory(owner=user, chat_model=chat_model)
    ids = long_thread(conversation, 300, words=40)  # ~45 tokens each: ~50 of them fit
    ConversationSummaryFactory(conversation=conversation, covers_through_id=ids[99])
    context = context_for_reply(_pending_reply(conversation, ids[-1]))
    sent = len(context.messages) - 1
    assert context.summary is not None and 0 < sent < 100
    assert sent + context.dropped_turns == 200, "every turn after the summary, sent or counted"


@pytest.mark.django_db
def test_a_summarised_thread_is_read_in_one_query(conversation, django_assert_num_queries):
    ids = long_thread(conversation, 2_000, words=2)
    ConversationSummaryFactory(conversation=conversation, covers_through_id=ids[-41])
    reply = _pending_reply(conversation, ids[-1])
    with django_assert_num_queries(1):  # the newest messages, the summary's text with them
        context = context_for_reply(reply)
    assert len(context.messages) == 1 + 40 and context.summary.text
