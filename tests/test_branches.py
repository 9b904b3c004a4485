"""Edit and regenerate: versions of a turn, paging between them, and the context that
follows the branch on screen."""

import pytest
from channels.db import database_sync_to_async

from conversations import selectors, services
from conversations.errors import ReplyInFlight, ValidationFailed
from conversations.models import Message, MessageStatus, Role
from tests.factories import MessageFactory, thread
from tests.fake_provider import Reply
from tests.wsclient import ChatSocket

pytestmark = pytest.mark.django_db(transaction=True)


def contents(conversation) -> list[str]:
    return [m.content for m in selectors.thread_messages(conversation)]


def sent_texts(request) -> list[str]:
    """The user and assistant texts a request to the provider carried, in order."""
    return [m["content"] for m in request.json["messages"] if m["role"] != "system"]


# --- Services and selectors -------------------------------------------------------------


def test_edit_adds_a_version_and_moves_the_thread_to_its_reply(conversation):
    question, answer, follow_up, _ = thread(conversation, "Hi", "Hello!", "Tell a joke", "Knock")
    sent = services.message_edit(message=follow_up, content="Tell a pun")
    assert sent.user_message.parent_id == answer.id
    assert sent.reply.status == MessageStatus.PENDING
    assert contents(conversation) == ["Hi", "Hello!", "Tell a pun", ""]
    # The original and its reply are kept as the other version.
    assert Message.objects.filter(pk=follow_up.pk, content="Tell a joke").exists()
    places = selectors.siblings_of([sent.user_message, follow_up])
    assert places[sent.user_message.id].position == 2
    assert places[sent.user_message.id].count == 2
    assert places[sent.user_message.id].previous_uuid == str(follow_up.uuid)
    assert places[follow_up.id].next_uuid == str(sent.user_message.uuid)


def test_edit_of_the_first_message_makes_a_second_root(conversation):
    first, reply = thread(conversation, "Hi", "Hello!")
    sent = services.message_edit(message=first, content="Hey")
    assert sent.user_message.parent_id is None
    assert selectors.siblings_of([sent.user_message])[sent.user_message.id].count == 2


def test_switching_version_shows_that_branch_to_its_newest_end(conversation):
    messages = thread(conversation, "Q", "A1", "more", "A2")
    edited = services.message_edit(message=messages[0], content="Q edited")
    services.reply_finish(
        reply_id=edited.reply.id,
        outcome=services.CallOutcome(status=MessageStatus.COMPLETE, content="B1"),
    )
    assert contents(conversation) == ["Q edited", "B1"]
    leaf = services.conversation_switch_branch(conversation=conversation, message=messages[0])
    assert leaf.id == messages[-1].id
    assert contents(conversation) == ["Q", "A1", "more", "A2"]
    # The next message continues the branch on screen.
    sent = services.message_send(conversation=conversation, content="and then?")
    assert sent.user_message.parent_id == messages[-1].id


def test_switching_while_a_reply_is_written_is_refused(conversation):
    question, answer = thread(conversation, "Q", "A")
    services.message_send(conversation=conversation, content="next")
    with pytest.raises(ReplyInFlight):
        services.conversation_switch_branch(conversation=conversation, message=question)


def test_only_user_messages_can_be_edited(conversation):
    _, answer = thread(conversation, "Q", "A")
    with pytest.raises(ValidationFailed):
        services.message_edit(message=answer, content="rewritten")


def test_an_empty_edit_is_refused_and_changes_nothing(conversation):
    question, _ = thread(conversation, "Q", "A")
    with pytest.raises(ValidationFailed):
        services.message_edit(message=question, content="   ")
    assert Message.objects.filter(conversation=conversation).count() == 2


def test_thread_without_a_recorded_leaf_ends_at_the_newest_message(conversation):
    thread(conversation, "Q", "A")
    newest = MessageFactory(conversation=conversation, role=Role.USER, content="later")
    assert selectors.thread_leaf(conversation).id == newest.id


# --- Over the socket ----------------------------------------------------------------------


@database_sync_to_async
def db_thread(conversation) -> list[Message]:
    return selectors.thread_messages(conversation)


async def finish_first_exchange(tab, fake_provider, answer: str = "Paris.") -> None:
    fake_provider.script(Reply(content=[answer]))
    await tab.say("Capital of France?", "k1")
    await tab.read_until_reply("complete")


async def test_regenerate_keeps_the_old_reply_as_version_one(conversation, fake_provider):
    tab = ChatSocket(conversation, conversation.owner)
    await tab.connect()
    await finish_first_exchange(tab, fake_provider)
    first_reply = tab.page.last()
    fake_provider.script(Reply(content=["Paris, ", "of course."]))
    await tab.send(action="retry", reply=first_reply.uuid)
    await tab.read_until(
        lambda page: page.last().uuid != first_reply.uuid and page.last().status == "complete"
    )
    assert tab.page.replacements == 1
    assert [m.text.strip() for m in tab.page.thread()] == [
        "Capital of France?",
        "Paris, of course.",
    ]
    assert "2 / 2" in tab.page.last().html
    # Both requests carried the same history: the question alone.
    first, second = fake_provider.chat_requests[-2:]
    assert sent_texts(first) == sent_texts(second) == ["Capital of France?"]
    await tab.close()


async def test_edit_sends_the_new_version_and_context_follows_the_branch(
    conversation, fake_provider
):
    tab = ChatSocket(conversation, conversation.owner)
    await tab.connect()
    await finish_first_exchange(tab, fake_provider)
    fake_provider.script(Reply(content=["Lyon is big."]))
    await tab.say("And Lyon?", "k2")
    await tab.read_until(lambda page: "Lyon is big." in page.last().text)
    await tab.read_until_reply("complete")
    lyon = tab.page.last("user")

    fake_provider.script(Reply(content=["Marseille is by the sea."]))
    await tab.send(action="edit", edited=lyon.uuid, message="And Marseille?")
    await tab.read_until(
        lambda page: "sea" in page.last().text and page.last().status == "complete"
    )
    request = fake_provider.chat_requests[-1]
    assert sent_texts(request) == ["Capital of France?", "Paris.", "And Marseille?"]
    assert [m.text.strip() for m in tab.page.thread()][-2:] == [
        "And Marseille?",
        "Marseille is by the sea.",
    ]
    assert "2 / 2" in tab.page.last("user").html

    # Page back to the first version, then continue that branch: Marseille is not sent.
    await tab.send(action="branch", version=lyon.uuid)
    await tab.read_until(lambda page: page.replacements == 2)
    assert [m.text.strip() for m in tab.page.thread()][-2:] == ["And Lyon?", "Lyon is big."]
    assert "1 / 2" in tab.page.last("user").html
    fake_provider.script(Reply(content=["Nice."]))
    await tab.say("And Nice?", "k3")
    await tab.read_until(lambda page: "Nice." in page.last().text)
    await tab.read_until_reply("complete")
    assert sent_texts(fake_provider.chat_requests[-1]) == [
        "Capital of France?",
        "Paris.",
        "And Lyon?",
        "Lyon is big.",
        "And Nice?",
    ]
    assert [m.content for m in await db_thread(conversation)][-2:] == ["And Nice?", "Nice."]
    await tab.close()


async def test_a_second_tab_follows_a_version_switch(conversation, fake_provider):
    one, two = (ChatSocket(conversation, conversation.owner) for _ in range(2))
    await one.connect()
    await two.connect()
    await finish_first_exchange(one, fake_provider)
    await two.read_until_reply("complete")
    first_reply = one.page.last()
    fake_provider.script(Reply(content=["Paris!"]))
    await one.send(action="retry", reply=first_reply.uuid)
    # Switching is refused while a reply is written: wait for the new version to finish.
    await two.read_until(
        lambda page: "Paris!" in page.last().text and page.last().status == "complete"
    )
    await one.send(action="branch", version=first_reply.uuid)
    await two.read_until(lambda page: page.replacements == 2)
    assert two.page.last().uuid == first_reply.uuid
    await one.close()
    await two.close()


async def test_reconnect_after_a_switch_elsewhere_replaces_the_stale_branch(
    conversation, fake_provider
):
    tab = ChatSocket(conversation, conversation.owner)
    await tab.connect()
    await finish_first_exchange(tab, fake_provider)
    old_reply = tab.page.last()
    fake_provider.script(Reply(content=["Paris!"]))
    await tab.send(action="retry", reply=old_reply.uuid)
    await tab.read_until(lambda page: "Paris!" in page.last().text)
    await tab.read_until_reply("complete")
    await tab.close()
    # Another tab pages back; this one reconnects claiming to end at the newer version.
    newer = tab.page.last().uuid
    await database_sync_to_async(services.conversation_switch_branch)(
        conversation=conversation,
        message=await database_sync_to_async(Message.objects.get)(uuid=old_reply.uuid),
    )
    again = ChatSocket(conversation, conversation.owner)
    await again.connect(last=newer)
    await again.read_until(lambda page: page.replacements == 1)
    assert again.page.last().uuid == old_reply.uuid
    await again.close()


async def test_edit_of_a_message_elsewhere_gets_a_clear_notice(conversation, other_user):
    from tests.factories import ConversationFactory

    foreign = await database_sync_to_async(ConversationFactory)(owner=other_user)
    theirs = await database_sync_to_async(MessageFactory)(conversation=foreign, content="secret")
    tab = ChatSocket(conversation, conversation.owner)
    await tab.connect()
    await tab.send(action="edit", edited=str(theirs.uuid), message="mine now")
    await tab.read_until(lambda page: any("not in this conversation" in n for n in page.notices))
    await tab.send(action="branch", version="not-a-uuid")
    await tab.read_until(lambda page: any("“version” is not a valid id" in n for n in page.notices))
    assert await database_sync_to_async(Message.objects.filter(content="mine now").count)() == 0
    await tab.close()
