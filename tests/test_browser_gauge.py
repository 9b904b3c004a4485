"""In Chromium: the context gauge in the chat header, its numbers on hover and in its panel,
and the same gauge swapped in after a reply (its panel kept open), under the site's CSP."""

import re
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from tests.conftest import save_screenshot
from tests.factories import ChatModelFactory, ConversationFactory, UsageRecordFactory, thread
from tests.fake_provider import Reply
from tests.test_browser import open_chat, send, wait_for_status
from tests.test_browser_comfort import csp_complaints

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SIZE = re.compile(r"^Context [\d,]+ of 32,768 tokens \(\d+%\)$")


def test_the_header_gauge_shows_the_window_and_cost_and_follows_each_reply(
    login, browser_context, alice, fake_provider, live_server_url
):
    conversation = ConversationFactory(
        owner=alice, chat_model=ChatModelFactory(), title="Paris", system_prompt="You are terse."
    )
    _, answer = thread(conversation, "Capital of France?", "Paris.")
    UsageRecordFactory(
        user=alice, conversation=conversation, message=answer, cost=Decimal("0.0042")
    )
    page = browser_context.new_page()
    complaints = csp_complaints(page)
    page = open_chat(login, alice, conversation, live_server_url, page=page)

    gauge = page.locator(".chat-header #context-gauge")
    expect(gauge.locator("svg.context-gauge-bar")).to_have_attribute("aria-label", SIZE)
    turns = gauge.locator("rect[data-part=turns]")
    turns.hover()
    expect(turns.locator("title")).to_have_text(re.compile(r"^Messages sent verbatim: \d+ tokens$"))
    expect(gauge.locator("rect[data-part=system] title")).to_have_text(
        re.compile(r"^System prompt: \d+ tokens$")
    )
    expect(gauge.locator("rect[data-part=output] title")).to_have_text(
        "Kept for the reply: 4,096 tokens"
    )
    expect(gauge.locator(".context-gauge-cost")).to_have_text("0.0042 USD")
    width = float(turns.get_attribute("width"))
    assert 0 < width < 100 and turns.bounding_box()["width"] > 0
    gauge.locator("summary").click()
    panel = gauge.locator(".context-gauge-panel")
    expect(panel).to_be_visible()
    expect(panel.locator("#context-gauge-branch")).to_have_text("0.0042 USD")
    save_screenshot(page, "chat-context-gauge")

    used = gauge.get_attribute("data-used")
    fake_provider.script(Reply(content="About two million people live in the city itself."))
    send(page, "How many people live there?")
    wait_for_status(page, "complete")
    expect(page.locator("#context-gauge")).not_to_have_attribute("data-used", used)
    expect(page.locator("#context-gauge")).to_have_count(1)
    expect(page.locator("#context-gauge .context-gauge-cost")).not_to_have_text("0.0042 USD")
    expect(page.locator("#context-gauge svg")).to_have_attribute("aria-label", SIZE)
    expect(page.locator("#context-gauge-last")).to_have_attribute("data-reported", "true")
    expect(page.locator("#context-gauge .context-gauge-panel")).to_be_visible()  # kept open
    page.emulate_media(color_scheme="dark")
    save_screenshot(page, "chat-context-gauge-dark")
    page.set_viewport_size({"width": 390, "height": 844})
    box = page.locator("#context-gauge .context-gauge-panel").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 390, "the panel fits a phone"
    save_screenshot(page, "chat-context-gauge-phone")
    assert complaints == []
