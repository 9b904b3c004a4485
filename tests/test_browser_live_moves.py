"""Three tabs of one user in Chromium: a message sent in one moves that chat to the top of
Today in the others' sidebars, and a model or Think switched in one shows in the chat's
other tab, all without a reload (user_events.py, user_pushes.py)."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from conversations.models import Conversation
from tests.conftest import save_screenshot
from tests.factories import ChatModelFactory, ConversationFactory
from tests.fake_provider import Reply
from tests.test_browser import send, wait_for_status
from tests.waits import wait_for_socket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MARK = "window.__notReloaded = true"
NOT_RELOADED = "window.__notReloaded === true"
TODAY_FIRST = '#sidebar section[data-group="today"] li.conversation-item >> nth=0'


def test_a_send_moves_the_chat_up_and_a_switch_shows_in_the_chats_other_tab(
    login, alice, fake_provider, live_server_url
):
    plain = ChatModelFactory(name="fake-plain")
    capable = ChatModelFactory(name="fake-capable", supports_thinking=True)
    below = ConversationFactory(owner=alice, chat_model=plain, title="Below")
    Conversation.objects.filter(pk=below.pk).update(
        updated_at=timezone.now() - timedelta(minutes=5)
    )
    above = ConversationFactory(owner=alice, chat_model=plain, title="Above")
    one = login(alice)
    one.goto(f"{live_server_url}/c/{below.uuid}/")
    same_chat = one.context.new_page()
    same_chat.goto(f"{live_server_url}/c/{below.uuid}/")
    home = one.context.new_page()
    home.goto(f"{live_server_url}/")
    for page in (one, same_chat, home):
        wait_for_socket(page)
        expect(page.locator(TODAY_FIRST)).to_have_id(f"sidebar-item-{above.uuid}")
        page.evaluate(MARK)

    fake_provider.script(Reply(content="Back again."))
    send(one, "Back to this one")
    wait_for_status(one, "complete")
    for page in (one, same_chat, home):
        expect(page.locator(TODAY_FIRST)).to_have_id(f"sidebar-item-{below.uuid}")
        expect(page.locator(f"#sidebar-item-{below.uuid}")).to_have_count(1)
        expect(page.locator(f"#sidebar-item-{above.uuid}")).to_have_count(1)
    # The chat on screen stays marked as the current one in its own tabs.
    expect(same_chat.locator(f"#sidebar-item-{below.uuid}")).to_have_class(
        "conversation-item is-current"
    )
    save_screenshot(home, "live-other-tab-chat-moved-up")

    one.locator("header #model-switch select[name=model]").select_option(str(capable.pk))
    expect(one.locator("#switch-thinking")).to_have_count(1)
    other_picker = same_chat.locator("header #model-switch option:checked")
    expect(other_picker).to_have_text("Local server · fake-capable")
    expect(same_chat.locator("#switch-thinking")).to_have_attribute("aria-pressed", "false")
    one.locator("#switch-thinking").click()
    expect(one.locator("#switch-thinking")).to_have_attribute("aria-pressed", "true")
    expect(same_chat.locator("#switch-thinking")).to_have_attribute("aria-pressed", "true")
    save_screenshot(same_chat, "live-other-tab-model-and-think-switched")
    for page in (same_chat, home):
        assert page.evaluate(NOT_RELOADED), "the other tabs were never reloaded"
