"""In Chromium: regenerate, edit, paging between versions, long threads that load as you
scroll, and opening a conversation at one message."""

import pytest
from playwright.sync_api import expect

from conversations import selectors
from conversations.models import Message, Role
from tests.conftest import save_screenshot
from tests.factories import ChatModelFactory, ConversationFactory, long_thread
from tests.fake_provider import Reply
from tests.test_browser import LAST_REPLY, open_chat, reply_text, send, wait_for_status

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
LAST_USER = "#messages > [data-role=user]:nth-last-child(2)"


@pytest.fixture
def conversation(alice):
    return ConversationFactory(owner=alice, chat_model=ChatModelFactory(), title="Cities")


def sent_texts(request) -> list[str]:
    return [m["content"] for m in request.json["messages"] if m["role"] != "system"]


def test_regenerate_then_page_between_versions(
    login, conversation, alice, fake_provider, live_server_url
):
    fake_provider.script(Reply(content="Paris."), Reply(content="It is Paris, on the Seine."))
    page = open_chat(login, alice, conversation, live_server_url)
    send(page, "Capital of France?")
    wait_for_status(page, "complete")
    page.locator(f"{LAST_REPLY} .regenerate").click()
    expect(page.locator(f"{LAST_REPLY} .message-content")).to_have_text(
        "It is Paris, on the Seine.", timeout=15_000
    )
    wait_for_status(page, "complete")
    versions = page.locator(f"{LAST_REPLY} .version-count")
    expect(versions).to_have_text("2 / 2")
    # Only the last reply offers Regenerate; the question's history was sent both times.
    assert sent_texts(fake_provider.chat_requests[-1]) == ["Capital of France?"]
    save_screenshot(page, "chat-versions-desktop")

    page.locator(f"{LAST_REPLY} .version-previous").click()
    expect(versions).to_have_text("1 / 2")
    assert reply_text(page).strip() == "Paris."
    expect(page.locator(f"{LAST_REPLY} .version-previous")).to_be_disabled()
    page.locator(f"{LAST_REPLY} .version-next").click()
    expect(versions).to_have_text("2 / 2")
    assert reply_text(page).strip() == "It is Paris, on the Seine."
    # After a reload the page shows the version last chosen.
    page.reload()
    expect(page.locator(f"{LAST_REPLY} .version-count")).to_have_text("2 / 2")


def test_edit_resends_and_the_next_message_follows_the_branch_on_screen(
    login, conversation, alice, fake_provider, live_server_url
):
    fake_provider.script(
        Reply(content="Paris."), Reply(content="Rome."), Reply(content="Pasta, mostly.")
    )
    page = open_chat(login, alice, conversation, live_server_url)
    send(page, "Capital of France?")
    wait_for_status(page, "complete")

    question = page.locator(LAST_USER)
    question.hover()
    question.locator(".edit-message").click()
    box = question.locator(".edit-form textarea")
    expect(box).to_have_value("Capital of France?")
    box.press("Escape")  # cancels without sending
    expect(question.locator(".edit-form")).to_be_hidden()
    assert len(fake_provider.chat_requests) == 1

    question.hover()
    question.locator(".edit-message").click()
    box.fill("Capital of Italy?")
    box.press("Enter")
    expect(page.locator(f"{LAST_REPLY} .message-content")).to_have_text("Rome.", timeout=15_000)
    wait_for_status(page, "complete")
    expect(page.locator(f"{LAST_USER} .version-count")).to_have_text("2 / 2")
    expect(page.locator(f"{LAST_USER} .message-content")).to_have_text("Capital of Italy?")
    assert sent_texts(fake_provider.chat_requests[-1]) == ["Capital of Italy?"]

    send(page, "What do they eat?")
    expect(page.locator(f"{LAST_REPLY} .message-content")).to_have_text(
        "Pasta, mostly.", timeout=15_000
    )
    assert sent_texts(fake_provider.chat_requests[-1]) == [
        "Capital of Italy?",
        "Rome.",
        "What do they eat?",
    ]
    page.set_viewport_size(PHONE)
    save_screenshot(page, "chat-versions-phone")


def test_long_conversation_opens_at_the_end_and_loads_older_as_you_scroll_up(
    login, conversation, alice, live_server_url
):
    ids = long_thread(conversation, 5_000, words=40)
    page = open_chat(login, alice, conversation, live_server_url)
    articles = page.locator("#messages > article")
    expect(articles).to_have_count(selectors.PAGE_SIZE)
    newest = Message.objects.get(pk=ids[-1])
    expect(page.locator(f"#m-{newest.uuid}")).to_be_in_viewport()

    first_shown = page.locator("#messages > article").first
    first_uuid = first_shown.get_attribute("data-message-id")
    page.locator("#messages-scroll").evaluate("(el) => { el.scrollTop = 0; }")
    expect(articles).to_have_count(2 * selectors.PAGE_SIZE, timeout=10_000)
    # The message that was on top stays in view: the older page went in above it.
    expect(page.locator(f"#m-{first_uuid}")).to_be_in_viewport()
    older = Message.objects.get(pk=ids[-2 * selectors.PAGE_SIZE])
    assert page.locator("#messages > article").first.get_attribute("data-message-id") == str(
        older.uuid
    )
    page.set_viewport_size(PHONE)
    save_screenshot(page, "chat-long-thread-phone")


def test_opening_a_message_link_shows_it_and_loads_newer_below(
    login, conversation, alice, fake_provider, live_server_url
):
    ids = long_thread(conversation, 2_000)
    target = Message.objects.get(pk=ids[700])
    page = login(alice)
    page.goto(f"{live_server_url}/c/{conversation.uuid}/?m={target.uuid}")
    anchor = page.locator(f"#m-{target.uuid}")
    expect(anchor).to_be_in_viewport()
    expect(anchor).to_have_class("message message--user is-jump-target")
    page.locator("#messages-scroll").evaluate("(el) => { el.scrollTop = el.scrollHeight; }")
    after = Message.objects.get(pk=ids[700 - 10 + selectors.PAGE_SIZE])
    expect(page.locator(f"#m-{after.uuid}")).to_have_count(1, timeout=10_000)

    # A new message still lands at the end of the thread, after the loaded window.
    fake_provider.script(Reply(content="Still here."))
    send(page, "Back to the present")
    expect(page.locator("#messages > [data-role=user] .message-content").last).to_have_text(
        "Back to the present"
    )
    user_message = Message.objects.filter(role=Role.USER).latest("id")
    assert user_message.parent_id == ids[-1]
