"""Recall where a user sees it: under the reply that used it, in the conversation's
settings, in the admin and at start-up."""

import io

import pytest
from channels.db import database_sync_to_async
from django.core.management import call_command

from chatsite import embedded_postgres
from conversations import services
from conversations.models import Message, MessageChunk
from tests.factories import FACT, QUESTION, long_chat_with_fact, thread
from tests.fake_provider import Reply
from tests.markers import vectors_only
from tests.waits import wait_until_async
from tests.wsclient import ChatSocket

pytestmark = pytest.mark.django_db(transaction=True)


async def test_a_reply_shows_and_links_what_it_recalled(user, fake_provider, recall_on):
    conversation, messages = await database_sync_to_async(long_chat_with_fact)(user, turns=120)
    fact = messages[8]
    fake_provider.script(Reply(content="Your locker code is 4711."))
    tab = ChatSocket(conversation, user)
    await tab.connect(last=str(messages[-1].uuid))
    await tab.say(QUESTION, "k1")
    old = str(messages[-1].uuid)

    def answered(page) -> bool:
        last = page.last()
        return last is not None and last.uuid != old and last.status == "complete"

    page = await tab.read_until(answered, timeout=20)
    await tab.close()
    html = page.last().html
    assert "Recalled" in html and "earlier message" in html
    assert f'href="?m={fact.uuid}#m-{fact.uuid}"' in html
    request = fake_provider.chat_requests[-1].json
    assert FACT in request["messages"][0]["content"], "the provider got the excerpt"
    reply = await database_sync_to_async(Message.objects.get)(uuid=page.last().uuid)
    assert fact.id in [entry["id"] for entry in reply.context["recall"]["messages"]]
    # The finished turn is indexed by a background job, so the next question can recall it.
    indexed = MessageChunk.objects.filter(message_id=reply.id)
    await wait_until_async(database_sync_to_async(indexed.exists), timeout=30)


def test_the_page_shows_recall_under_a_reply_after_a_reload(client, user, conversation):
    question, answer = thread(conversation, "Q", "A")
    answer.context = {
        "recall": {
            "method": "hybrid",
            "messages": [
                {"id": question.id, "uuid": str(question.uuid), "score": 0.03, "excerpt": "Q"},
            ],
        }
    }
    answer.save(update_fields=["context"])
    client.force_login(user)
    html = client.get(f"/c/{conversation.uuid}/").content.decode()
    assert "Recalled 1 earlier message" in html
    assert f'href="?m={question.uuid}#m-{question.uuid}"' in html


def test_recall_can_be_switched_off_in_a_conversations_settings(client, user, conversation):
    client.force_login(user)
    form = {"model": conversation.chat_model_id, "system_prompt": "", "parameters": "on"}
    client.post(f"/c/{conversation.uuid}/settings/", form)
    conversation.refresh_from_db()
    assert conversation.recall_enabled is False
    client.post(f"/c/{conversation.uuid}/settings/", {**form, "recall_enabled": "on"})
    conversation.refresh_from_db()
    assert conversation.recall_enabled is True


def test_new_conversations_follow_the_site_default(user, chat_model, settings):
    settings.RECALL_DEFAULT_ON = False
    conversation = services.conversation_create(owner=user, chat_model=chat_model)
    assert conversation.recall_enabled is False


def test_the_admin_shows_recall_per_reply(admin_client, conversation):
    question, answer = thread(conversation, "Q", "A")
    answer.context = {
        "recall": {
            "method": "lexical",
            "note": "no vector index",
            "messages": [{"id": 7, "score": 0.02}],
        }
    }
    answer.save(update_fields=["context"])
    html = admin_client.get(f"/admin/conversations/message/{answer.pk}/change/").content.decode()
    assert "lexical: #7 (0.02); no vector index" in html


@vectors_only
def test_start_up_says_which_recall_mode_is_active(recall_on):
    out = io.StringIO()
    call_command("describe_setup", stdout=out)
    assert (
        "recall:        hybrid: vectors (bundled/multilingual-e5-small) and words" in out.getvalue()
    )
    recall_on.RECALL_ENABLED = False
    out = io.StringIO()
    call_command("describe_setup", stdout=out)
    assert "recall:        off" in out.getvalue()


def test_on_a_cpu_the_embedded_pgvector_cannot_run_on_recall_keeps_to_words(
    recall_on, settings, monkeypatch
):
    settings.DATABASE_IS_EMBEDDED = True
    monkeypatch.setattr(embedded_postgres, "missing_cpu_flags", lambda: ("avx2", "fma"))
    out = io.StringIO()
    call_command("describe_setup", stdout=out)
    assert (
        "recall:        lexical only (full-text and trigrams): the embedded PostgreSQL's"
        " pgvector needs instructions this CPU lacks (avx2, fma)" in out.getvalue()
    )
