"""A reply's Markdown is formatted while it streams, in Chromium against daphne and the fake
provider: static/js/streaming.js applying conversations/streaming_markdown.py's frames."""

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import save_screenshot
from tests.fake_provider import Reply
from tests.test_browser import LAST_REPLY, open_chat, send, tokens, wait_for_status

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

REPLY = [
    "Here is a ", "**bold", "** word", " and `inline code`.\n\n",
    "```python\n", "def double(x):\n", "    return x * 2\n", "```\n\n",
    "| name | value |\n", "|---|--:|\n", "| a | 1 |\n", "| b | 2 |\n\n",
    "- first\n", "- second\n\n", "Then ", "$E=mc^2$", " and more:\n\n",
    *tokens(40, "tail"),
]  # fmt: skip

# What the reply's content shows while it streams, kept by the page at each change: the
# last one before the final swap is what that swap replaced.
# Blocks by tag, text and height (a finished code block gets a Copy button and its wrapper).
SHOWN_JS = """(content) => ({
  text: (() => {
    const copy = content.cloneNode(true);
    copy.querySelectorAll(".copy-code").forEach((button) => button.remove());
    return copy.textContent;
  })(),
  blocks: Array.from(content.children, (el) => el.matches(".code-block") ? "PRE" : el.tagName),
  height: Math.round(content.getBoundingClientRect().height),
})"""
WATCH_LIVE = (
    """(selector) => {
  const shown = """
    + SHOWN_JS
    + """;
  window.lastLive = null;
  new MutationObserver(() => {
    const reply = document.querySelector(selector);
    if (!reply || reply.dataset.status !== "streaming") return;
    const content = reply.querySelector(".message-content");
    window.lastLive = shown(content);
  }).observe(document.getElementById("messages"),
    { childList: true, subtree: true, characterData: true });
}"""
)
SHOWN = (
    """(selector) => ("""
    + SHOWN_JS
    + """)(
  document.querySelector(selector + " .message-content"))"""
)


def test_bold_code_and_a_table_are_formatted_mid_stream_and_the_end_moves_nothing(
    login, conversation, alice, fake_provider, live_server_url
):
    fake_provider.script(Reply(content=REPLY, tokens_per_second=12))
    page = open_chat(login, alice, conversation, live_server_url)
    page.evaluate(WATCH_LIVE, LAST_REPLY)
    send(page, "Show me Markdown")
    content = page.locator(f"{LAST_REPLY} .message-content")
    expect(content.locator("table td").last).to_have_text("2", timeout=15_000)
    assert page.locator(LAST_REPLY).get_attribute("data-status") == "streaming"
    expect(content.locator("strong")).to_have_text("bold")
    expect(content.locator("pre code.language-python .k").first).to_have_text("def")
    expect(content.locator("th").last).to_have_class(re.compile("align-right"))
    assert "**" not in content.inner_text() and "```" not in content.inner_text()
    save_screenshot(page, "streaming-markdown-mid-stream")
    expect(content.locator(".math-inline .katex")).to_have_count(1, timeout=10_000)
    wait_for_status(page, "complete", timeout=20_000)
    live, final = page.evaluate("() => window.lastLive"), page.evaluate(SHOWN, LAST_REPLY)
    assert live["blocks"] == final["blocks"]
    assert live["text"] == final["text"]
    assert live["height"] == final["height"], "the final swap moves nothing"
    save_screenshot(page, "streaming-markdown-complete")
