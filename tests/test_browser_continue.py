"""In Chromium: Continue on a reply cut off by its length limit, which streams on in the
same reply and ends with the calls' summed usage."""

import pytest
from playwright.sync_api import expect

from conversations.models import Message, Role, UsageRecord
from tests.conftest import save_screenshot
from tests.fake_provider import Reply
from tests.test_browser import LAST_REPLY, open_chat, send, tokens, wait_for_status
from tests.test_browser_comfort import csp_complaints

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_continue_streams_the_rest_into_the_same_reply(
    login, browser_context, conversation, alice, fake_provider, live_server_url
):
    first = {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52}
    fake_provider.script(
        Reply(content="Once upon a time there lived a", finish_reason="length", usage=first)
    )
    page = browser_context.new_page()
    complaints = csp_complaints(page)
    page = open_chat(login, alice, conversation, live_server_url, page=page)
    send(page, "Tell me a story")
    wait_for_status(page, "truncated")
    button = page.locator(f"{LAST_REPLY} .continue-form button")
    expect(button).to_be_visible()
    expect(page.locator(f"{LAST_REPLY} .message-footer")).to_contain_text("40 → 12 tokens")
    save_screenshot(page, "chat-continue-offered")

    second = {"prompt_tokens": 60, "completion_tokens": 30, "total_tokens": 90}
    fake_provider.script(
        Reply(content=[" king", *tokens(30, " and")], tokens_per_second=30, usage=second)
    )
    button.click()
    wait_for_status(page, "streaming")
    expect(page.locator(f"{LAST_REPLY} .message-content")).to_contain_text("lived a king")
    wait_for_status(page, "complete")
    expect(page.locator(f"{LAST_REPLY} .message-content")).to_contain_text(
        "Once upon a time there lived a king"
    )
    expect(page.locator(f"{LAST_REPLY} .message-footer")).to_contain_text("100 → 42 tokens")
    expect(page.locator(f"{LAST_REPLY} .continue-form")).to_have_count(0)
    expect(page.locator("#messages > .message--assistant")).to_have_count(1)  # one reply
    save_screenshot(page, "chat-continue-done")
    reply = Message.objects.filter(conversation=conversation, role=Role.ASSISTANT).get()
    assert UsageRecord.objects.filter(message=reply).count() == 2
    assert fake_provider.chat_requests[-1].json["messages"][-2]["content"].startswith("Once upon")
    assert complaints == []


def test_continue_is_offered_on_the_last_reply_only(
    login, browser_context, conversation, alice, fake_provider, live_server_url
):
    fake_provider.script(
        Reply(content="Cut here", finish_reason="length"), Reply(content="A second answer.")
    )
    page = open_chat(login, alice, conversation, live_server_url)
    send(page, "First question")
    wait_for_status(page, "truncated")
    send(page, "Second question")
    wait_for_status(page, "complete")
    earlier = page.locator("#messages > .message--assistant").first
    expect(earlier.locator(".continue-form")).to_have_count(1)  # rendered, but not shown
    expect(earlier.locator(".continue-form")).to_be_hidden()
