"""The sidebar: date groups, rename, archive, delete, and their views."""

import logging
from datetime import UTC, datetime, timedelta

import pytest
from channels.db import database_sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import AsyncClient
from django.urls import reverse
from django.utils import timezone

from conversations import selectors, services
from conversations.errors import ValidationFailed
from conversations.live.registry import registry
from conversations.models import (
    Attachment,
    Conversation,
    ConversationSummary,
    Message,
    MessageStatus,
    UsageRecord,
)
from conversations.services.titles import title_generate
from tests.factories import (
    ConversationFactory,
    ConversationSummaryFactory,
    UsageRecordFactory,
    thread,
)
from tests.fake_provider import Reply
from tests.test_attachments import PNG
from tests.waits import wait_until_async
from tests.wsclient import ChatSocket


def _set_updated(conversation, when):
    # updated_at is auto_now: only a queryset update sets it to a chosen time.
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=when)
    conversation.refresh_from_db()
    return conversation


def _hx(client, url, data=None, *, current=None):
    headers = {"HTTP_HX_REQUEST": "true"}
    if current is not None:
        headers["HTTP_HX_CURRENT_URL"] = f"http://testserver{current}"
    return client.post(url, data or {}, **headers)


@pytest.fixture
def logged_in(client, user):
    client.force_login(user)
    return client


# --- Date groups -------------------------------------------------------------------------


@pytest.mark.django_db
def test_groups_are_today_yesterday_previous_7_days_and_older(user, chat_model):
    now = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)
    ages = {"today": 0, "yesterday": 1, "two days": 2, "a week": 7, "eight days": 8, "year": 365}
    made = {
        title: _set_updated(
            ConversationFactory(owner=user, chat_model=chat_model, title=title),
            now - timedelta(days=days),
        )
        for title, days in ages.items()
    }
    groups = selectors.conversation_groups(selectors.conversation_list_for_user(user), now=now)
    assert [(g.key, [c.title for c in g.conversations]) for g in groups] == [
        ("today", ["today"]),
        ("yesterday", ["yesterday"]),
        ("previous_7_days", ["two days", "a week"]),
        ("older", ["eight days", "year"]),
    ]
    assert made["today"] in groups[0].conversations


@pytest.mark.django_db
def test_groups_follow_calendar_days_in_the_current_time_zone(user, chat_model):
    # 17:00 UTC on the 1st is 01:00 on the 2nd in Shanghai.
    late = _set_updated(
        ConversationFactory(owner=user, chat_model=chat_model, title="Late"),
        datetime(2026, 5, 1, 17, 0, tzinfo=UTC),
    )
    now = datetime(2026, 5, 2, 2, 0, tzinfo=UTC)
    with timezone.override("Asia/Shanghai"):
        assert [g.key for g in selectors.conversation_groups([late], now=now)] == ["today"]
    with timezone.override("UTC"):
        assert [g.key for g in selectors.conversation_groups([late], now=now)] == ["yesterday"]


@pytest.mark.django_db
def test_empty_groups_are_left_out_and_a_clock_ahead_counts_as_today(user, chat_model):
    now = timezone.now()
    ahead = _set_updated(
        ConversationFactory(owner=user, chat_model=chat_model), now + timedelta(days=1)
    )
    assert [g.key for g in selectors.conversation_groups([ahead], now=now)] == ["today"]
    assert selectors.conversation_groups([]) == []


@pytest.mark.django_db
def test_sidebar_shows_the_groups_with_their_headings(logged_in, user, chat_model):
    _set_updated(ConversationFactory(owner=user, title="Fresh"), timezone.now())
    _set_updated(
        ConversationFactory(owner=user, title="Ancient"), timezone.now() - timedelta(days=40)
    )
    html = logged_in.get(reverse("home")).content.decode()
    assert html.index(">Today</h2>") < html.index("Fresh") < html.index(">Older</h2>")
    assert html.index(">Older</h2>") < html.index("Ancient")
    assert ">Yesterday</h2>" not in html
    assert 'href="/archived/"' in html and 'action="/search/"' in html


# --- Rename ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_rename_trims_the_title_and_marks_it_as_the_users(conversation):
    renamed = services.conversation_rename(conversation=conversation, title="  Trip\n plans  ")
    conversation.refresh_from_db()
    assert renamed.title == conversation.title == "Trip plans"
    assert conversation.title_from_user


@pytest.mark.django_db
@pytest.mark.parametrize("title", ["", "   \n ", "x" * 201])
def test_rename_refuses_a_blank_or_too_long_title(conversation, title):
    with pytest.raises(ValidationFailed, match="1 to 200 characters"):
        services.conversation_rename(conversation=conversation, title=title)
    conversation.refresh_from_db()
    assert conversation.title == "A conversation" and not conversation.title_from_user


@pytest.mark.django_db
def test_a_renamed_conversation_never_gets_a_generated_title(conversation):
    thread(conversation, "Hello", "Hi there")
    services.conversation_rename(conversation=conversation, title="Mine")
    assert title_generate(conversation_id=conversation.pk) is None
    conversation.refresh_from_db()
    assert conversation.title == "Mine"


@pytest.mark.django_db
def test_tidying_the_sidebar_is_not_activity(conversation):
    before = _set_updated(conversation, timezone.now() - timedelta(days=3)).updated_at
    services.conversation_rename(conversation=conversation, title="New name")
    services.conversation_archive(conversation=conversation)
    services.conversation_unarchive(conversation=conversation)
    conversation.refresh_from_db()
    assert conversation.updated_at == before


@pytest.mark.django_db
def test_rename_answers_with_the_updated_item(logged_in, conversation):
    url = reverse("conversation_rename", args=[conversation.uuid])
    response = _hx(logged_in, url, {"title": "Holiday <b>ideas</b>"}, current="/")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith("<li") or '<li class="conversation-item' in html
    assert "Holiday &lt;b&gt;ideas&lt;/b&gt;" in html and "<b>ideas" not in html
    assert "chat-title" not in html, "another page is on screen: no header to update"
    conversation.refresh_from_db()
    assert conversation.title == "Holiday <b>ideas</b>" and conversation.title_from_user


@pytest.mark.django_db
def test_renaming_the_conversation_on_screen_also_updates_its_header(logged_in, conversation):
    url = reverse("conversation_rename", args=[conversation.uuid])
    page = reverse("conversation", args=[conversation.uuid])
    html = _hx(logged_in, url, {"title": "Renamed"}, current=page).content.decode()
    assert 'class="conversation-item is-current"' in html
    assert '<h1 class="chat-title" hx-swap-oob="outerHTML:.chat-title">Renamed</h1>' in html


@pytest.mark.django_db
def test_a_refused_rename_keeps_the_form_open_with_the_reason(logged_in, conversation):
    url = reverse("conversation_rename", args=[conversation.uuid])
    html = _hx(logged_in, url, {"title": "   "}).content.decode()
    assert "is-renaming" in html and 'role="alert"' in html
    assert "1 to 200 characters" in html
    assert "chat-title" not in html
    conversation.refresh_from_db()
    assert conversation.title == "A conversation"


@pytest.mark.django_db
def test_rename_without_htmx_redirects_to_the_conversation(logged_in, conversation):
    url = reverse("conversation_rename", args=[conversation.uuid])
    response = logged_in.post(url, {"title": "Plain form"})
    assert response.status_code == 302
    assert response["Location"] == reverse("conversation", args=[conversation.uuid])


# --- Archive -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_archive_moves_the_conversation_to_the_archived_page_and_back(logged_in, user, chat_model):
    kept = ConversationFactory(owner=user, chat_model=chat_model, title="Kept")
    old = ConversationFactory(owner=user, chat_model=chat_model, title="Filed away")
    response = _hx(logged_in, reverse("conversation_archive", args=[old.uuid]))
    html = response.content.decode()
    assert 'id="conversation-list" hx-swap-oob="true"' in html
    assert "Kept" in html and "Filed away" not in html
    assert selectors.conversation_list_for_user(user) == [kept]
    assert "Filed away" not in logged_in.get(reverse("home")).content.decode()
    archived_page = logged_in.get(reverse("archived")).content.decode()
    assert "Filed away" in archived_page
    assert reverse("conversation_unarchive", args=[old.uuid]) in archived_page
    html = _hx(logged_in, reverse("conversation_unarchive", args=[old.uuid])).content.decode()
    assert "Filed away" in html
    assert set(selectors.conversation_list_for_user(user)) == {kept, old}
    archived_page = logged_in.get(reverse("archived")).content.decode()
    assert "Filed away" not in archived_page[archived_page.index('id="archived-list"') :]


@pytest.mark.django_db
def test_an_archived_conversation_still_opens(logged_in, conversation):
    services.conversation_archive(conversation=conversation)
    response = logged_in.get(reverse("conversation", args=[conversation.uuid]))
    assert response.status_code == 200


@pytest.mark.django_db
def test_archive_without_htmx_redirects_home(logged_in, conversation):
    response = logged_in.post(reverse("conversation_archive", args=[conversation.uuid]))
    assert response.status_code == 302 and response["Location"] == reverse("home")
    conversation.refresh_from_db()
    assert conversation.archived


# --- Delete ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_delete_removes_messages_summaries_and_image_files_but_keeps_usage(
    conversation, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path
    question, answer = thread(conversation, "Look at this", "Nice picture")
    Conversation.objects.filter(pk=conversation.pk).update(current_leaf=answer)
    image = services.attachment_upload(
        owner=conversation.owner, upload=SimpleUploadedFile("a.png", PNG, "image/png")
    )
    Attachment.objects.filter(pk=image.pk).update(message=question)
    ConversationSummaryFactory(conversation=conversation, covers_through=question)
    usage = UsageRecordFactory(user=conversation.owner, conversation=conversation)
    path = tmp_path / image.file.name
    assert path.exists()
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_delete(conversation=conversation)
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert not Message.objects.exists() and not ConversationSummary.objects.exists()
    assert not Attachment.objects.exists() and not path.exists()
    usage.refresh_from_db()
    assert usage.conversation_id is None, "the ledger keeps the call, without the chat"


@pytest.mark.django_db(transaction=True)
def test_deleting_the_conversation_on_screen_sends_the_page_home(logged_in, conversation):
    page = reverse("conversation", args=[conversation.uuid])
    response = _hx(
        logged_in, reverse("conversation_delete", args=[conversation.uuid]), current=page
    )
    assert response.status_code == 200 and response["HX-Redirect"] == "/"
    assert not Conversation.objects.filter(pk=conversation.pk).exists()


@pytest.mark.django_db(transaction=True)
def test_deleting_another_conversation_refreshes_the_sidebar(logged_in, user, chat_model):
    shown = ConversationFactory(owner=user, chat_model=chat_model, title="On screen")
    doomed = ConversationFactory(owner=user, chat_model=chat_model, title="Doomed")
    page = reverse("conversation", args=[shown.uuid])
    response = _hx(logged_in, reverse("conversation_delete", args=[doomed.uuid]), current=page)
    html = response.content.decode()
    assert "HX-Redirect" not in response
    assert "Doomed" not in html and "On screen" in html
    assert 'class="conversation-item is-current"' in html
    assert list(Conversation.objects.all()) == [shown]


@pytest.mark.django_db
def test_the_delete_button_asks_for_confirmation(logged_in, conversation):
    html = logged_in.get(reverse("home")).content.decode()
    delete_url = reverse("conversation_delete", args=[conversation.uuid])
    assert f'hx-post="{delete_url}"' in html
    assert 'hx-confirm="Delete “A conversation”? This cannot be undone."' in html


@pytest.mark.django_db
def test_sidebar_actions_only_accept_post(logged_in, conversation):
    for name in ("conversation_rename", "conversation_archive", "conversation_delete"):
        assert logged_in.get(reverse(name, args=[conversation.uuid])).status_code == 405
    assert Conversation.objects.filter(pk=conversation.pk, archived=False).exists()


# --- Ownership ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_another_users_conversation_is_404_for_every_action(logged_in, other_user, chat_model):
    theirs = ConversationFactory(owner=other_user, chat_model=chat_model, title="Theirs")
    for name, data in [
        ("conversation_rename", {"title": "Hijacked"}),
        ("conversation_archive", {}),
        ("conversation_unarchive", {}),
        ("conversation_delete", {}),
    ]:
        assert _hx(logged_in, reverse(name, args=[theirs.uuid]), data).status_code == 404, name
    theirs.refresh_from_db()
    assert theirs.title == "Theirs" and not theirs.archived


@pytest.mark.django_db
def test_archived_page_lists_only_my_archived_conversations(logged_in, user, other_user):
    ConversationFactory(owner=user, title="My archived", archived=True)
    ConversationFactory(owner=user, title="My live")
    ConversationFactory(owner=other_user, title="Their archived", archived=True)
    html = logged_in.get(reverse("archived")).content.decode()
    archived_section = html[html.index('id="archived-list"') :]
    assert "My archived" in archived_section
    assert "My live" not in archived_section and "Their archived" not in html


@pytest.mark.django_db(transaction=True)
def test_sidebar_pages_require_login(client, conversation):
    for url in (reverse("archived"), reverse("search")):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    response = client.post(reverse("conversation_delete", args=[conversation.uuid]))
    assert response.status_code == 302
    assert Conversation.objects.filter(pk=conversation.pk).exists()


# --- Deleting while a reply streams ------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_deleting_while_a_reply_streams_stops_it_and_leaves_nothing_behind(
    conversation, fake_provider, caplog
):
    fake_provider.script(Reply(content=[f"w{i} " for i in range(400)], tokens_per_second=40))
    tab = ChatSocket(conversation, conversation.owner)
    await tab.connect()
    await tab.say("Write a lot", "k1")
    await tab.read_until(lambda page: page.last() is not None and page.last().text)
    client = AsyncClient()
    await client.aforce_login(conversation.owner)
    caplog.set_level(logging.ERROR, logger="conversations")
    response = await client.post(
        reverse("conversation_delete", args=[conversation.uuid]), headers={"HX-Request": "true"}
    )
    assert response.status_code == 200
    await wait_until_async(
        lambda: registry.live_in_conversation(str(conversation.uuid)) is None,
        message="the generator never ended",
    )
    assert registry.live_in_conversation(str(conversation.uuid)) is None, "the generator ended"
    stream = fake_provider.wait_for_disconnect(timeout=5)
    assert not stream.finished, "the provider was stopped, not left to stream on"
    await tab.close()
    exists = database_sync_to_async(
        lambda: (
            Conversation.objects.filter(pk=conversation.pk).exists(),
            Message.objects.filter(
                status__in=[MessageStatus.PENDING, MessageStatus.STREAMING]
            ).exists(),
        )
    )
    assert await exists() == (False, False)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    usage = await database_sync_to_async(list)(UsageRecord.objects.all())
    assert len(usage) == 1 and usage[0].conversation_id is None, "the stopped call is billed"
