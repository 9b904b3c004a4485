"""In Chromium: what a reply recalled is listed under it, and each entry opens the
conversation at the earlier message, however far back it is."""

import pytest
from playwright.sync_api import expect

from conversations.models import Message
from tests.conftest import save_screenshot
from tests.factories import ChatModelFactory, ConversationFactory, long_thread
from tests.test_browser import open_chat

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_a_recalled_message_opens_where_it_was_said(login, alice, live_server_url):
    conversation = ConversationFactory(owner=alice, chat_model=ChatModelFactory(), title="Gym")
    ids = long_thread(conversation, 600)
    early, later = Message.objects.get(pk=ids[10]), Message.objects.get(pk=ids[40])
    reply = Message.objects.get(pk=ids[-1])
    reply.context = {
        "recall": {
            "method": "hybrid",
            "messages": [
                {
                    "id": m.id,
                    "uuid": str(m.uuid),
                    "score": 0.03,
                    "at": m.created_at.isoformat(),
                    "excerpt": m.content[:40],
                }
                for m in (early, later)
            ],
        }
    }
    reply.save(update_fields=["context"])

    page = open_chat(login, alice, conversation, live_server_url)
    recalled = page.locator(f"#m-{reply.uuid} details.recalled")
    expect(recalled.locator("summary")).to_have_text("Recalled 2 earlier messages")
    links = recalled.locator(".recalled-link")
    expect(links.first).not_to_be_visible()
    recalled.locator("summary").click()
    expect(links).to_have_count(2)
    expect(links.first).to_contain_text("turn 10 lorem")
    save_screenshot(page, "chat-recalled-list")

    links.first.click()
    target = page.locator(f"#m-{early.uuid}")
    expect(target).to_be_in_viewport(timeout=10_000)
    expect(target).to_have_class("message message--user is-jump-target")
    assert f"m={early.uuid}" in page.url
