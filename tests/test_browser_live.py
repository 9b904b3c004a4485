"""Two tabs of one user in Chromium: what one does (start a chat, rename it, delete it) and
what the server does in the background (a generated title) shows in the other at once,
without a reload (user_events.py, user_socket.py)."""

import re

import pytest
from playwright.sync_api import expect

from conversations.models import Conversation
from tests.conftest import save_screenshot
from tests.factories import ChatModelFactory, ConversationFactory
from tests.fake_provider import Reply
from tests.waits import wait_for_socket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Set in a tab at the start: still there at the end, the tab was never reloaded.
MARK = "window.__notReloaded = true"
NOT_RELOADED = "window.__notReloaded === true"


def chat_or_title(body: dict) -> Reply:
    if body.get("stream"):
        return Reply(content="Foxes listen for prey under the snow.")
    return Reply(content="Foxes Hunting In Snow")


@pytest.fixture
def server(daphne):
    """A server of this test's own: generated titles on (the shared one has them off)."""
    return daphne(TITLES_ENABLED="true")


def item(page, conversation):
    return page.locator(f"#sidebar-item-{conversation.uuid}")


def test_the_other_tab_follows_a_new_chat_its_title_a_rename_and_the_delete(
    login, alice, fake_provider, server
):
    ChatModelFactory()
    kept = ConversationFactory(owner=alice, chat_model=ChatModelFactory(), title="Kept")
    fake_provider.responder = chat_or_title
    one = login(alice)
    one.goto(f"{server.url}/")
    other = one.context.new_page()
    other.goto(f"{server.url}/c/{kept.uuid}/")
    for page in (one, other):
        wait_for_socket(page)
    other.evaluate(MARK)

    # A new chat started in one tab appears in the other, then takes its generated title.
    box = one.locator("form#composer textarea[name=message]")
    box.fill("How do foxes hunt in the snow?")
    box.press("Enter")
    one.wait_for_url(re.compile(r"/c/[0-9a-f-]+/$"))
    started = Conversation.objects.exclude(pk=kept.pk).get(owner=alice)
    expect(item(other, started)).to_be_visible()
    expect(item(other, started).locator(".conversation-link")).to_have_text(
        "Foxes Hunting In Snow", timeout=20_000
    )
    expect(one.locator("h1.chat-title")).to_have_text("Foxes Hunting In Snow")
    expect(one).to_have_title("Foxes Hunting In Snow · chatsite")
    save_screenshot(other, "live-other-tab-new-chat-titled")

    # The other tab opens it; a rename in the first reaches its sidebar, header and title.
    item(other, started).locator(".conversation-link").click()
    other.wait_for_url(f"{server.url}/c/{started.uuid}/")
    wait_for_socket(other)
    other.evaluate(MARK)
    other.locator("form#composer textarea[name=message]").focus()
    row = item(one, started)
    row.get_by_role("button", name="Rename").click()
    row.locator(".rename-form input[name=title]").fill("Winter foxes")
    row.locator(".rename-form input[name=title]").press("Enter")
    expect(item(other, started).locator(".conversation-link")).to_have_text("Winter foxes")
    expect(other.locator("h1.chat-title")).to_have_text("Winter foxes")
    expect(other).to_have_title("Winter foxes · chatsite")
    # A push never takes the focus from what the reader is typing.
    expect(other.locator("form#composer textarea[name=message]")).to_be_focused()
    save_screenshot(other, "live-other-tab-renamed")

    # Deleted in the first tab (which goes home), the other says so and keeps its sidebar.
    one.once("dialog", lambda dialog: dialog.accept())
    item(one, started).get_by_role("button", name="Delete").click()
    one.wait_for_url(f"{server.url}/")
    expect(other.locator("#chat-deleted")).to_contain_text("This chat was deleted")
    expect(other.locator("form#composer")).to_have_count(0)
    expect(item(other, started)).to_have_count(0)
    expect(item(other, kept)).to_be_visible()
    assert other.evaluate(NOT_RELOADED), "the other tab was never reloaded"
    save_screenshot(other, "live-other-tab-deleted")
