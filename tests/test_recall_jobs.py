"""Recall's indexing jobs: a finished reply indexes its turn, an import its conversation, a
Celery worker runs the task, and `reindex_recall` backfills, resumably."""

import io

import pytest
from channels.db import database_sync_to_async
from django.core.management import CommandError, call_command

from conversations import exports, services
from conversations.models import Conversation, MessageChunk
from conversations.recall.embedders import BUNDLED_NAME
from conversations.tasks import index_messages
from tests.factories import ConversationFactory, thread
from tests.fake_provider import Reply
from tests.waits import wait_until
from tests.wsclient import ChatSocket

pytestmark = pytest.mark.django_db(transaction=True)


def _wait_for_chunks(**filters):
    return wait_until(
        lambda: MessageChunk.objects.filter(**filters).count() or None,
        timeout=30,
        message="the messages were indexed",
    )


async def test_a_finished_reply_indexes_its_question_and_answer(
    conversation, fake_provider, recall_on
):
    recall_on.CELERY_BROKER_URL = ""
    fake_provider.script(Reply(content="The capital of Mongolia is Ulaanbaatar."))
    tab = ChatSocket(conversation, conversation.owner)
    await tab.connect()
    await tab.say("What is the capital of Mongolia?", "k1")
    await tab.read_until_reply("complete")
    await tab.close()
    await database_sync_to_async(_wait_for_chunks)(conversation=conversation)
    texts = await database_sync_to_async(
        lambda: sorted(
            MessageChunk.objects.filter(conversation=conversation).values_list("text", flat=True)
        )
    )()
    assert texts == ["The capital of Mongolia is Ulaanbaatar.", "What is the capital of Mongolia?"]


def test_an_imported_conversation_is_indexed(user, chat_model, recall_on):
    recall_on.CELERY_BROKER_URL = ""
    original = ConversationFactory(owner=user, chat_model=chat_model, title="Cats")
    thread(original, "我的猫叫小花。", "好名字！")
    exported = "".join(exports.export_json([original]))
    result = services.conversations_import(owner=user, data=exported)
    assert not result.failures, result.failures
    (imported,) = result.conversations
    _wait_for_chunks(conversation=imported)
    assert MessageChunk.objects.filter(conversation=imported).count() == 2


def test_the_celery_task_indexes_on_a_worker(user, chat_model, recall_on, celery_worker_factory):
    celery_worker_factory()
    conversation = ConversationFactory(owner=user, chat_model=chat_model)
    messages = thread(conversation, "Remember: the wifi password is hunter2.", "Noted.")
    index_messages.delay([m.id for m in messages])
    _wait_for_chunks(conversation=conversation)
    chunk = MessageChunk.objects.get(message=messages[0])
    assert (chunk.embedding_model, chunk.dimensions) == (BUNDLED_NAME, 384)


def test_reindex_backfills_with_progress_and_resumes(user, chat_model):
    first = ConversationFactory(owner=user, chat_model=chat_model)
    second = ConversationFactory(owner=user, chat_model=chat_model)
    thread(first, *[f"first {i} about apples" for i in range(6)])
    thread(second, *[f"second {i} about pears" for i in range(4)])
    out = io.StringIO()
    call_command("reindex_recall", "--conversation", str(second.uuid), stdout=out)
    assert "4 messages to index" in out.getvalue() and "4/4 messages" in out.getvalue()
    assert not MessageChunk.objects.filter(conversation=first).exists()
    out = io.StringIO()
    call_command("reindex_recall", stdout=out)
    assert "6 messages to index" in out.getvalue(), "what is done is skipped"
    assert MessageChunk.objects.count() == 10
    out = io.StringIO()
    call_command("reindex_recall", stdout=out)
    assert "0 messages to index" in out.getvalue()


def test_reindex_refuses_a_model_that_is_not_configured(user):
    with pytest.raises(CommandError, match="EMBEDDING_MODEL=dashscope/text-embedding-v4"):
        call_command("reindex_recall", "--model", "dashscope/text-embedding-v4")
    with pytest.raises(CommandError, match="No conversation"):
        call_command("reindex_recall", "--conversation", "not-a-uuid")
    assert Conversation.objects.count() == 0


def test_a_message_that_yields_no_chunks_does_not_stop_the_backfill(user, chat_model, monkeypatch):
    from conversations.services import recall

    monkeypatch.setattr(recall, "INDEX_BATCH", 1)  # one message a batch: the blank is alone
    conversation = ConversationFactory(owner=user, chat_model=chat_model)
    blank, *rest = thread(conversation, "   ", "first answer", "second question")
    assert services.conversation_index(conversation_id=conversation.pk) == 2
    assert set(MessageChunk.objects.values_list("message_id", flat=True)) == {m.id for m in rest}
