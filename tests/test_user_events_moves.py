"""The user's other tabs follow what one tab does to a chat beyond its sidebar: a model,
Think or JSON switched reaches that chat's open pages (the header and the composer), and a
message sent moves the chat's item alone to the top of Today in every sidebar, only when
another chat was above it (user_events.py, user_pushes.py)."""

from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from django.db import transaction
from django.utils import timezone

from conversations import services, user_events
from conversations.models import Conversation, Message, MessageStatus
from tests.factories import ChatModelFactory, ConversationFactory, thread
from tests.test_user_events import (
    changes,
    in_thread,
    layer,  # noqa: F401 (the fixture: both channel layers)
)
from tests.wsclient import ChatSocket, PageSocket

pytestmark = pytest.mark.django_db(transaction=True)
Change = user_events.Change


def _active(conversation, *, ago: timedelta) -> Conversation:
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=timezone.now() - ago)
    conversation.refresh_from_db()
    return conversation


def _sent(conversation, content: str) -> None:
    """A message sent and its reply done (another send waits for the reply in flight)."""
    sent = services.message_send(conversation=conversation, content=content)
    Message.objects.filter(pk=sent.reply.pk).update(status=MessageStatus.COMPLETE)


def _controls(events) -> list[str]:
    return [e["conversation"] for _, e in events if e["type"] == user_events.CONTROLS_CHANGED]


# --- the services: what they tell ------------------------------------------------------


def test_a_message_sent_below_another_chat_is_told_as_moved_after_the_commit(
    user, chat_model, told
):
    below = _active(ConversationFactory(owner=user, chat_model=chat_model), ago=timedelta(hours=1))
    ConversationFactory(owner=user, chat_model=chat_model)  # above it
    with transaction.atomic():
        services.message_send(conversation=below, content="Back to this one")
        assert told == [], "nothing leaves before the commit"
    assert changes(told) == [(str(below.uuid), Change.MOVED)]


def test_a_message_sent_in_the_chat_already_first_tells_nothing(user, chat_model, told):
    ConversationFactory(owner=user, chat_model=chat_model)
    first = ConversationFactory(owner=user, chat_model=chat_model)  # the newest
    _sent(first, "Still here")
    _sent(first, "And again")
    assert told == []


def test_a_continue_below_another_chat_is_told_as_moved(user, chat_model, told):
    below = _active(ConversationFactory(owner=user, chat_model=chat_model), ago=timedelta(hours=1))
    question, reply = thread(below, "Tell me everything", "The first half")
    Message.objects.filter(pk=reply.pk).update(
        status=MessageStatus.TRUNCATED, finish_reason="length"
    )
    Conversation.objects.filter(pk=below.pk).update(current_leaf=reply)
    ConversationFactory(owner=user, chat_model=chat_model)  # above it
    services.reply_continue(reply=Message.objects.select_related("conversation").get(pk=reply.pk))
    assert changes(told) == [(str(below.uuid), Change.MOVED)]


def test_a_model_think_or_json_switched_is_told_to_the_chats_pages(user, told):
    capable = ChatModelFactory(name="capable", supports_thinking=True, supports_json=True)
    conversation = ConversationFactory(owner=user, chat_model=ChatModelFactory())
    services.conversation_switch_model(conversation=conversation, chat_model=capable)
    services.conversation_set_switches(conversation=conversation, thinking=True)
    services.conversation_set_switches(conversation=conversation, json_mode=True)
    services.conversation_update_settings(
        conversation=conversation, chat_model=capable, system_prompt="Be brief."
    )
    assert _controls(told) == [str(conversation.uuid)] * 4


# --- the sockets: what the other tabs get ----------------------------------------------


@pytest.mark.usefixtures("layer")
async def test_the_chats_other_tab_shows_the_model_and_switches_set_in_one(user):
    plain = await database_sync_to_async(ChatModelFactory)(name="fake-plain")
    capable = await database_sync_to_async(ChatModelFactory)(
        name="fake-capable", supports_thinking=True, supports_json=True, context_window=128_000
    )
    conversation = await database_sync_to_async(ConversationFactory)(owner=user, chat_model=plain)
    other_tab, home = ChatSocket(conversation, user), PageSocket(user)
    for tab in (other_tab, home):
        assert await tab.connect()

    await in_thread(
        services.conversation_switch_model, conversation=conversation, chat_model=capable
    )
    selected = f'<option value="{capable.pk}" selected>'
    await other_tab.read_until(lambda page: other_tab.heard(selected))
    frame = other_tab.page.frames[-1]
    assert 'id="model-switch" class="model-switch"' in frame and 'hx-swap-oob="true"' in frame
    assert 'id="switch-thinking" name="thinking" value="on" aria-pressed="false"' in frame
    assert 'data-window="128000"' in frame, "the gauge is the new model's window"

    await in_thread(services.conversation_set_switches, conversation=conversation, thinking=True)
    pressed = 'id="switch-thinking" name="thinking" value="off" aria-pressed="true"'
    await other_tab.read_until(lambda page: other_tab.heard(pressed))

    await home.drain(0.3)
    assert not home.heard("model-switch"), "a page without that chat has no controls"
    for tab in (other_tab, home):
        await tab.close()


@pytest.mark.usefixtures("layer")
async def test_a_message_sent_moves_only_that_item_to_the_top_of_today(user, chat_model):
    older = await database_sync_to_async(ConversationFactory)(
        owner=user, chat_model=chat_model, title="Older one"
    )
    await database_sync_to_async(_active)(older, ago=timedelta(minutes=5))
    newer = await database_sync_to_async(ConversationFactory)(
        owner=user, chat_model=chat_model, title="Newer one"
    )
    home = PageSocket(user)
    await home.connect()

    await database_sync_to_async(_sent)(older, "Back to it")
    await home.read_until(lambda page: len(page.frames) == 1)
    frame = home.page.frames[0]
    deleted = f'<li id="sidebar-item-{older.uuid}" hx-swap-oob="delete"></li>'
    inserted = '<ul hx-swap-oob="afterbegin:section[data-group=today] > ul">'
    assert frame.startswith(deleted + inserted), "the old item goes before the new takes its id"
    assert f'id="sidebar-item-{older.uuid}"' in frame.removeprefix(deleted)
    assert "Older one" in frame
    assert "conversation-list" not in frame and f"sidebar-item-{newer.uuid}" not in frame

    # Now first: the next message moves nothing and is not told.
    await database_sync_to_async(_sent)(older, "And more")
    await home.drain(0.3)
    assert len(home.page.frames) == 1
    await home.close()


@pytest.mark.usefixtures("layer")
async def test_a_chat_moving_into_an_empty_today_sends_the_whole_list(user, chat_model):
    days_ago = await database_sync_to_async(ConversationFactory)(owner=user, chat_model=chat_model)
    await database_sync_to_async(_active)(days_ago, ago=timedelta(days=3))
    older = await database_sync_to_async(ConversationFactory)(owner=user, chat_model=chat_model)
    await database_sync_to_async(_active)(older, ago=timedelta(days=5))
    home = PageSocket(user)
    await home.connect()
    await in_thread(services.message_send, conversation=older, content="Back to it")
    await home.read_until(lambda page: len(page.frames) == 1)
    frame = home.page.frames[0]
    assert 'id="conversation-list" hx-swap-oob="true"' in frame, "no Today group to put it in"
    assert frame.index(f"sidebar-item-{older.uuid}") < frame.index(f"sidebar-item-{days_ago.uuid}")
    await home.close()
