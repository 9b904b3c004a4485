"""A user's open pages stay current without a reload (user_events.py, user_socket.py): a
chat created, renamed (by the user or a generated title), archived or deleted, and a
summary written, reach every socket of that user once the change commits (never after a
rollback), through the in-memory layer and through Redis, and no other user's socket."""

import os
from uuid import uuid4

import pytest
from channels.db import database_sync_to_async
from channels.layers import channel_layers
from django.db import transaction

from conversations import services, user_events
from conversations.models import ConversationSummary
from tests.factories import ConversationFactory, thread
from tests.fake_provider import Reply
from tests.wsclient import ChatSocket, PageSocket

pytestmark = pytest.mark.django_db(transaction=True)

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14")
Change = user_events.Change


# --- the services: what they tell, and when ---------------------------------------------


def changes(told) -> list[tuple[str, str]]:
    return [(event["conversation"], event["change"]) for _, event in told]


def test_a_rename_is_told_to_its_owner_once_the_transaction_commits(user, conversation, told):
    with transaction.atomic():
        services.conversation_rename(conversation=conversation, title="Fox facts")
        assert told == [], "nothing leaves before the commit"
    assert told == [
        (
            user.pk,
            {
                "type": user_events.CONVERSATION_CHANGED,
                "conversation": str(conversation.uuid),
                "change": Change.RENAMED,
            },
        )
    ]


def test_a_change_rolled_back_is_never_told(conversation, told):
    with pytest.raises(RuntimeError), transaction.atomic():
        services.conversation_delete(conversation=conversation)
        raise RuntimeError("the request failed after the delete")
    assert told == []


def test_every_sidebar_action_tells_what_it_did(user, chat_model, told):
    created = services.conversation_create(owner=user, chat_model=chat_model)
    services.conversation_archive(conversation=created)
    services.conversation_unarchive(conversation=created)
    services.conversation_delete(conversation=created)
    uuid = str(created.uuid)
    assert changes(told) == [
        (uuid, Change.CREATED),
        (uuid, Change.ARCHIVED),
        (uuid, Change.UNARCHIVED),
        (uuid, Change.DELETED),
    ]


def test_a_first_message_refused_tells_that_its_new_chat_went_again(user, chat_model, told):
    created = services.conversation_create(owner=user, chat_model=chat_model)
    assert services.conversation_discard_unused(conversation=created)
    assert changes(told)[-1] == (str(created.uuid), Change.DELETED)


def test_a_generated_title_is_told_but_not_one_the_user_got_in_first(
    user, chat_model, fake_provider, told
):
    conversation = ConversationFactory(owner=user, chat_model=chat_model, title="")
    thread(conversation, "How do foxes hunt?", "By ear.")
    fake_provider.default_reply = Reply(content="Foxes hunting")
    assert services.title_generate(conversation_id=conversation.pk) == "Foxes hunting"
    assert changes(told) == [(str(conversation.uuid), Change.RENAMED)]
    told.clear()
    services.conversation_rename(conversation=conversation, title="Mine")
    told.clear()
    assert services.title_generate(conversation_id=conversation.pk) is None
    assert told == []


def test_a_summary_written_or_taken_back_is_told(user, chat_model, told):
    conversation = ConversationFactory(owner=user, chat_model=chat_model)
    messages = thread(conversation, "one", "two", "three", "four")
    summary = ConversationSummary.objects.create(
        conversation=conversation, text="Counting.", covers_through=messages[1], token_count=2
    )
    services.summary_regenerate(summary=summary)
    assert [event for _, event in told][0] == {
        "type": user_events.SUMMARY_CHANGED,
        "conversation": str(conversation.uuid),
        "summary": None,
    }


def test_a_page_without_a_chat_opens_the_users_socket_and_a_chat_page_only_its_own(
    client, user, conversation
):
    client.force_login(user)
    for url, socket in [("/", "/ws/u/"), ("/archived/", "/ws/u/?list=archived")]:
        html = client.get(url).content.decode()
        assert html.count("ws-connect=") == 1 and f'ws-connect="{socket}"' in html, url
    html = client.get(f"/c/{conversation.uuid}/").content.decode()
    assert html.count("ws-connect=") == 1, "the chat's socket carries the user's events"


# --- the sockets: who hears it ---------------------------------------------------------


@pytest.fixture(params=["in-memory", "redis"])
def layer(request, settings):
    """Every socket test runs on both layers: the embedded default and production's."""
    if request.param == "in-memory":
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    else:
        settings.CHANNEL_LAYERS = {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {"hosts": [REDIS_URL], "prefix": f"chatsite-test-{uuid4().hex[:8]}"},
            }
        }
    channel_layers.backends.clear()
    yield request.param
    channel_layers.backends.clear()


def in_thread(fn, **kwargs):
    """A service called as a request or a background job would: on a thread of its own."""
    return database_sync_to_async(fn)(**kwargs)


async def test_two_tabs_of_a_user_hear_each_change_and_another_users_tab_nothing(
    layer, user, other_user, chat_model
):
    open_here = await database_sync_to_async(ConversationFactory)(
        owner=user, chat_model=chat_model, title="Open here"
    )
    theirs = await database_sync_to_async(ConversationFactory)(owner=other_user, title="Theirs")
    chat, home = ChatSocket(open_here, user), PageSocket(user)
    their_chat, their_home = ChatSocket(theirs, other_user), PageSocket(other_user)
    for tab in (chat, home, their_chat, their_home):
        assert await tab.connect()

    created = await in_thread(services.conversation_create, owner=user, title="Brand new")
    for tab in (chat, home):
        await tab.read_until(lambda page: any("Brand new" in f for f in page.frames))
    assert 'id="conversation-list" hx-swap-oob="true"' in home.page.frames[-1]

    await in_thread(services.conversation_rename, conversation=open_here, title="Renamed here")
    for tab in (chat, home):
        await tab.read_until(lambda page: any("Renamed here" in f for f in page.frames))
    assert (
        'class="chat-title" hx-swap-oob="outerHTML:.chat-title">Renamed here'
        in (chat.page.frames[-1])
    ), "the header of the chat on screen follows"
    assert "chat-title" not in home.page.frames[-1]

    await in_thread(services.conversation_delete, conversation=open_here)
    await chat.read_until(lambda page: any('id="chat-deleted"' in f for f in page.frames))
    await home.read_until(lambda page: len(page.frames) == 3)
    assert f"sidebar-item-{open_here.uuid}" not in home.page.frames[-1]
    assert f"sidebar-item-{created.uuid}" in home.page.frames[-1]
    assert 'id="chat-deleted"' not in home.page.frames[-1]

    await their_home.drain(0.5)
    await their_chat.drain(0.1)
    for frame in their_home.page.frames + their_chat.page.frames:
        assert "Brand new" not in frame and "Renamed here" not in frame and "sidebar" not in frame
    for tab in (chat, home, their_chat, their_home):
        await tab.close()


async def test_a_generated_title_reaches_the_open_chat_and_the_sidebar(
    layer, user, chat_model, fake_provider
):
    conversation = await database_sync_to_async(ConversationFactory)(
        owner=user, chat_model=chat_model, title=""
    )
    await database_sync_to_async(thread)(conversation, "How do foxes hunt?", "By ear.")
    fake_provider.default_reply = Reply(content="Foxes hunting by ear")
    chat = ChatSocket(conversation, user)
    await chat.connect()
    await in_thread(services.title_generate, conversation_id=conversation.pk)
    await chat.read_until(lambda page: any("Foxes hunting by ear" in f for f in page.frames))
    frame = chat.page.frames[-1]
    assert f'id="sidebar-item-{conversation.uuid}"' in frame
    assert 'hx-swap-oob="outerHTML:.chat-title">Foxes hunting by ear</h1>' in frame
    await chat.close()


async def test_a_regenerated_summary_moves_the_open_chats_divider_and_gauge(
    layer, user, chat_model, fake_provider, settings
):
    settings.CELERY_BROKER_URL = ""  # the summary job runs in this process
    conversation = await database_sync_to_async(ConversationFactory)(
        owner=user, chat_model=chat_model
    )
    messages = await database_sync_to_async(thread)(conversation, *[f"m{i}" for i in range(8)])
    summary = await database_sync_to_async(ConversationSummary.objects.create)(
        conversation=conversation, text="Old take.", covers_through=messages[3], token_count=2
    )
    fake_provider.default_reply = Reply(content="A **fresh** take.")
    chat, home = ChatSocket(conversation, user), PageSocket(user)
    await chat.connect()
    await home.connect()
    await in_thread(services.summary_regenerate, summary=summary)
    await chat.read_until(lambda page: any("Regenerating" in f for f in page.frames))
    await chat.read_until(lambda page: any("fresh</strong> take" in f for f in page.frames))
    frame = chat.page.frames[-1]
    assert frame.index('hx-swap-oob="delete"') < frame.index(
        f'hx-swap-oob="afterend:#m-{messages[3].uuid}"'
    ), "the old divider goes before the new one takes its id"
    assert 'id="context-gauge" hx-swap-oob="true"' in frame
    await home.drain(0.3)
    assert home.page.frames == [], "a page without that chat has no divider to move"
    for tab in (chat, home):
        await tab.close()


async def test_a_page_socket_after_a_reconnect_gets_the_sidebar_afresh(layer, user, conversation):
    home = PageSocket(user)
    await home.connect()
    await home.send(action="sync", again=True)
    await home.read_until(lambda page: home.heard(f"sidebar-item-{conversation.uuid}"))
    await home.close()


async def test_a_page_socket_needs_a_signed_in_user(layer):
    from django.contrib.auth.models import AnonymousUser

    stranger = PageSocket(AnonymousUser())
    connected, code = await stranger.communicator.connect()
    assert not connected and code == 4403


async def test_a_chat_page_whose_title_changed_before_its_socket_opened_gets_it(
    layer, user, chat_model
):
    conversation = await database_sync_to_async(ConversationFactory)(
        owner=user, chat_model=chat_model, title="Foxes in snow"
    )
    chat = ChatSocket(conversation, user)
    await chat.connect()
    await chat.send(action="sync", last="", title="Foxes in snow")
    await chat.drain(0.3)
    assert not chat.heard("chat-title"), "a page showing the title as it is gets nothing"
    await chat.send(action="sync", last="", title="How do foxes hunt?")
    await chat.read_until(lambda page: chat.heard('outerHTML:.chat-title">Foxes in snow</h1>'))
    await chat.close()


async def test_the_archived_page_follows_what_is_archived_elsewhere(layer, user, conversation):
    archived_page = PageSocket(user, path="/ws/u/?list=archived")
    home = PageSocket(user)
    for tab in (archived_page, home):
        await tab.connect()
    await in_thread(services.conversation_archive, conversation=conversation)
    item = f'id="archived-item-{conversation.uuid}"'
    await archived_page.read_until(lambda page: archived_page.heard(item))
    await home.read_until(lambda page: len(page.frames) == 1)
    assert 'id="archived-list"' not in home.page.frames[0], "a page without that list"
    await in_thread(services.conversation_delete, conversation=conversation)
    await archived_page.read_until(lambda page: len(page.frames) == 2)
    assert 'id="archived-list"' in archived_page.page.frames[1]
    assert item not in archived_page.page.frames[1]
    for tab in (archived_page, home):
        await tab.close()
