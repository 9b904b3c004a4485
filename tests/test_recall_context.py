"""Recall inside a reply's request: a long chat over a small window still answers about a
fact from its first turns, with the excerpt framed, inside the budget and never twice."""

import pytest

from conversations import services
from conversations.context import context_for_reply
from conversations.context.recall import RECALL_HEADING, recall_query
from conversations.errors import ProviderTimeout
from conversations.models import Message, Role
from conversations.recall import embedders
from tests.factories import (
    FACT,
    QUESTION,
    ChatModelFactory,
    ConversationFactory,
    long_chat_with_fact,
    pending_reply_to,
    thread,
)
from tests.markers import WITHOUT_VECTORS

pytestmark = pytest.mark.django_db


def test_a_300_turn_chat_recalls_the_fact_of_turn_5(user, recall_on):
    conversation, messages = long_chat_with_fact(user)
    fact = messages[8]
    context = context_for_reply(pending_reply_to(conversation, messages[-1]))
    system = context.messages[0]["content"]
    assert RECALL_HEADING in system and "4711" in system
    assert context.recall["method"] == ("lexical" if WITHOUT_VECTORS else "hybrid")
    assert fact.id in [m["id"] for m in context.recall["messages"]]
    assert context.estimated_tokens <= context.budget, "the window never overflows"
    verbatim = [m["content"] for m in context.messages[1:]]
    assert FACT not in verbatim, "recalled, not also sent verbatim"
    assert system.count("4711") == 1, "nothing appears twice"
    assert context.dropped_turns > 0


def test_recall_stays_within_its_share_of_the_budget(user, recall_on):
    recall_on.RECALL_BUDGET_RATIO = 0.05
    conversation, messages = long_chat_with_fact(user, turns=120)
    context = context_for_reply(pending_reply_to(conversation, messages[-1]))
    assert 0 < context.recall["tokens"] <= int(context.budget * 0.05)


def test_a_chat_that_fits_its_window_recalls_nothing(user, recall_on):
    conversation = ConversationFactory(owner=user, chat_model=ChatModelFactory())
    messages = thread(conversation, FACT, "Noted.")
    context = context_for_reply(pending_reply_to(conversation, messages[-1]))
    assert context.recall == {} and RECALL_HEADING not in context.messages[0]["content"]


def test_recall_off_for_the_conversation_sends_no_excerpts(user, recall_on):
    conversation, messages = long_chat_with_fact(user, turns=120)
    conversation.recall_enabled = False
    conversation.save(update_fields=["recall_enabled"])
    context = context_for_reply(pending_reply_to(conversation, messages[-1]))
    assert context.recall == {}
    assert "4711" not in str(context.messages)


class SlowEmbedder:
    """The configured embedder timing out: a provider's, unreachable."""

    name = embedders.BUNDLED_NAME
    dimensions = 384

    def passages(self, texts):
        raise ProviderTimeout()

    def query(self, text, *, timeout):
        raise ProviderTimeout()


def test_a_failing_query_embedding_falls_back_to_words(user, recall_on, monkeypatch):
    conversation, messages = long_chat_with_fact(user, turns=120)
    monkeypatch.setattr(embedders, "current", lambda: SlowEmbedder())
    context = context_for_reply(pending_reply_to(conversation, messages[-1]))
    assert context.recall["method"] == "lexical"
    assert "ProviderTimeout" in context.recall["note"]
    assert "4711" in context.messages[0]["content"], "its words still find the fact"


def test_only_the_branch_being_answered_is_recalled(user, recall_on):
    conversation, messages = long_chat_with_fact(user, turns=120)
    fact = messages[8]
    edited = services.message_edit(message=fact, content="I have no locker at all.")
    Message.objects.filter(pk=edited.reply.pk).update(status="complete", content="Fine.")
    # The branch through the original fact goes on; the edit's branch does not carry it.
    context = context_for_reply(pending_reply_to(conversation, edited.reply))
    assert "4711" not in context.messages[0]["content"]


def test_a_short_follow_up_borrows_the_turn_before_it():
    before = Message(role=Role.ASSISTANT, content="The two options are Redis and RabbitMQ.")
    after = Message(role=Role.USER, content="and the second one?")
    assert recall_query([before, after]) == "and the second one?\n" + before.content
    chinese = Message(role=Role.USER, content="第二个呢？")
    assert recall_query([before, chinese]).endswith(before.content)
    question = Message(role=Role.USER, content=QUESTION)
    assert recall_query([before, question]) == QUESTION
