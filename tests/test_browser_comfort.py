"""Comfort on the chat page in Chromium: math, copy buttons, thinking/writing indicators.

static/js/enhance.js and static/css/enhance.css against daphne and the fake provider.
"""

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import save_screenshot
from tests.factories import ChatModelFactory, ConversationFactory, thread
from tests.fake_provider import Reply
from tests.test_browser import LAST_REPLY, open_chat, send, tokens, wait_for_status

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def conversation(alice):
    return ConversationFactory(owner=alice, chat_model=ChatModelFactory(), title="Comfort")


@pytest.fixture
def clipboard(browser_context, live_server_url):
    """The page may write and the test may read the clipboard (127.0.0.1 is a secure
    context); returns a reader."""
    browser_context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server_url)
    return lambda page: page.evaluate("() => navigator.clipboard.readText()")


def csp_complaints(page) -> list[str]:
    """Console lines in which Chromium refuses something under the page's CSP."""
    found: list[str] = []

    def record(message) -> None:
        if "Content Security Policy" in message.text:
            found.append(message.text)

    page.on("console", record)
    return found


# --- Math ------------------------------------------------------------------------------


def test_math_is_typeset_on_page_load(login, conversation, alice, live_server_url):
    thread(
        conversation,
        "What is energy?",
        "It is $E=mc^2$, in display form:\n\n$$\\int_0^1 x\\,dx = \\tfrac12$$\n\nand \\(a^2\\).",
    )
    page = login(alice)
    complaints = csp_complaints(page)
    page.goto(f"{live_server_url}/c/{conversation.uuid}/")
    reply = page.locator(LAST_REPLY)
    expect(reply.locator(".math-inline .katex")).to_have_count(2)
    expect(reply.locator(".math-display .katex-display")).to_have_count(1)
    annotations = reply.locator("annotation").all_text_contents()
    assert annotations == ["E=mc^2", "\\int_0^1 x\\,dx = \\tfrac12", "a^2"]
    # KaTeX sizes its boxes through element.style (CSSOM), which the CSP allows.
    strut = reply.locator(".math-display .katex-strut").first
    assert float(strut.evaluate("el => parseFloat(el.style.height)")) > 0
    assert complaints == []


def test_math_in_a_streamed_reply_is_typeset_as_it_arrives(
    login, conversation, alice, fake_provider, live_server_url
):
    words = ["The ", "famous ", "formula ", "is ", "$E=mc^2$", ". "] + tokens(30, "more")
    fake_provider.script(Reply(content=words, tokens_per_second=15))
    page = open_chat(login, alice, conversation, live_server_url)
    send(page, "Famous formula?")
    content = page.locator(f"{LAST_REPLY} .message-content")
    expect(content.locator(".math-inline .katex")).to_have_count(1, timeout=10_000)
    assert page.locator(LAST_REPLY).get_attribute("data-status") == "streaming"
    wait_for_status(page, "complete")
    expect(content.locator(".math-inline .katex")).to_have_count(1)
    assert content.locator("annotation").text_content() == "E=mc^2"
    assert "$E=mc^2$" not in content.inner_text()


HOSTILE = (
    "Links: $\\href{javascript:window.pwned=1}{click me}$ and "
    "\\(\\url{javascript:window.pwned=2}\\)\n\n"
    "$$\\htmlId{composer}{x}\\htmlClass{copy-message}{y}\\htmlStyle{color:red}{z}$$\n\n"
    "Image: $\\includegraphics{https://evil.example/x.png}$\n\n"
    '$<img src=x onerror="window.pwned=3">$ and $</span><script>window.pwned=4</script>$\n\n'
    "Unbalanced: $x and \\(y and $$z\n\n"
    "Expansion: $\\def\\a{\\a\\a}\\a$ and size $\\rule{99999em}{99999em}$"
)


def test_hostile_math_stays_inert(login, conversation, alice, fake_provider, live_server_url):
    fake_provider.script(Reply(content=[HOSTILE]))
    page = open_chat(login, alice, conversation, live_server_url)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    send(page, "Be evil")
    wait_for_status(page, "complete")
    content = page.locator(f"{LAST_REPLY} .message-content")
    expect(content.locator("[data-typeset]")).to_have_count(8)
    assert content.locator("a, img, script, [id], [href], [src]").count() == 0
    assert page.locator("#composer").count() == 1
    assert page.locator(f"{LAST_REPLY} .copy-message").count() == 1
    for math in content.locator("[data-typeset]").all():
        math.dispatch_event("click")
    expect(content).to_contain_text("Unbalanced: $x and (y and $$z")
    # The runaway macro and the giant rule end as KaTeX errors or clamped boxes, quickly.
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 1280
    assert page.evaluate("() => window.pwned") is None
    assert not [url for url in requests if "evil.example" in url]


# --- Copy ------------------------------------------------------------------------------

CODE = "def hello():\n    print('hi <b>&</b>')\n\nhello()"


def test_a_code_block_copy_button_copies_just_the_code(
    login, conversation, alice, fake_provider, live_server_url, clipboard
):
    fake_provider.script(Reply(content=[f"Here:\n\n```python\n{CODE}\n```\n\nAnd `inline`."]))
    page = open_chat(login, alice, conversation, live_server_url)
    send(page, "Code please")
    wait_for_status(page, "complete")
    block = page.locator(f"{LAST_REPLY} .code-block")
    expect(block).to_have_count(1)
    button = block.locator(".copy-code")
    expect(button).to_have_text("Copy")
    block.hover()
    button.click()
    expect(button).to_have_text("Copied")
    assert clipboard(page) == CODE
    expect(button).to_have_text("Copy", timeout=4000)


def test_message_copy_buttons_copy_the_raw_text_of_each_message(
    login, conversation, alice, fake_provider, live_server_url, clipboard
):
    answer = "**Bold** and $y^2$,\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    fake_provider.script(Reply(content=[answer]))
    page = open_chat(login, alice, conversation, live_server_url)
    question = "Line one\n  indented <b>two</b> & $x$"
    send(page, question)
    wait_for_status(page, "complete")
    user = page.locator("#messages [data-role=user]").last
    user.hover()
    user.locator(".copy-message").click()
    expect(user.locator(".copy-message")).to_have_text("Copied")
    assert clipboard(page) == question
    reply_button = page.locator(f"{LAST_REPLY} .message-footer .copy-message")
    reply_button.click()
    expect(reply_button).to_have_text("Copied")
    assert clipboard(page) == answer


def test_copy_falls_back_to_a_hidden_textarea_without_the_async_clipboard(
    login, conversation, alice, fake_provider, live_server_url, browser_context
):
    fake_provider.script(Reply(content=[f"```\n{CODE}\n```"]))
    page = browser_context.new_page()
    # An older browser: no navigator.clipboard. What execCommand copies is recorded.
    page.add_init_script(
        "Object.defineProperty(Navigator.prototype, 'clipboard', { get: () => undefined });"
        "document.addEventListener('copy', (e) => { const t = e.target;"
        " window.copied = t.value.slice(t.selectionStart, t.selectionEnd); });"
    )
    page = open_chat(login, alice, conversation, live_server_url, page=page)
    send(page, "Old browser")
    wait_for_status(page, "complete")
    page.locator(f"{LAST_REPLY} .code-block").hover()
    page.locator(f"{LAST_REPLY} .copy-code").click()
    expect(page.locator(f"{LAST_REPLY} .copy-code")).to_have_text("Copied")
    assert page.evaluate("() => window.copied") == CODE
    assert page.locator("textarea.copy-buffer").count() == 0, "the helper is removed"


# --- Indicators ------------------------------------------------------------------------


def _after(page, selector: str) -> dict:
    return page.locator(selector).evaluate(
        "el => { const s = getComputedStyle(el, '::after');"
        " return { content: s.content, animation: s.animationName }; }"
    )


def _animation(page, selector: str) -> str:
    return page.locator(selector).evaluate("el => getComputedStyle(el).animationName")


def test_waiting_thinking_and_writing_are_visible_and_gone_when_complete(
    login, conversation, alice, fake_provider, live_server_url
):
    fake_provider.script(
        Reply(
            reasoning=tokens(25, "hmm"),
            content=tokens(25, "word"),
            tokens_per_second=12,
            first_token_delay=1.5,
        )
    )
    page = open_chat(login, alice, conversation, live_server_url)
    content = f"{LAST_REPLY} .message-content"
    summary = f"{LAST_REPLY} .message-reasoning-block > summary"
    send(page, "Think first")
    # Waiting for the first token: animated dots and a live footer.
    page.wait_for_function(
        "() => { const el = document.querySelector('#messages [data-role=assistant]:last-child"
        " .message-content'); return el && getComputedStyle(el, '::after').animationName"
        " === 'chat-dots'; }"
    )
    expect(page.locator(f"{LAST_REPLY} .message-footer .indicator")).to_be_visible()
    save_screenshot(page, "comfort-waiting")
    # Reasoning streams: "Thinking…" pulses and the dots give way.
    expect(page.locator(summary)).to_be_visible(timeout=10_000)
    expect(page.locator(summary)).to_have_text("Thinking…")
    assert _animation(page, summary) == "chat-thinking"
    assert _after(page, content)["content"] == "none"
    save_screenshot(page, "comfort-thinking")
    # Writing: a blinking caret after the text, and "Thinking…" stops pulsing.
    page.wait_for_function(
        "() => { const el = document.querySelector('#messages [data-role=assistant]:last-child"
        " .message-content'); return el && el.textContent.length > 0; }",
        timeout=10_000,
    )
    # The caret follows the last block's text (static/css/streaming.css).
    assert _after(page, f"{content} > :last-child")["animation"] == "chat-caret"
    assert _animation(page, summary) == "none"
    save_screenshot(page, "comfort-writing")
    wait_for_status(page, "complete")
    assert _after(page, content)["content"] == "none"
    assert _animation(page, summary) == "none"
    expect(page.locator(f"{LAST_REPLY} .indicator")).to_have_count(0)


def test_indicators_hold_still_for_reduced_motion(
    login, conversation, alice, fake_provider, live_server_url
):
    fake_provider.script(Reply(content=tokens(60, "calm"), tokens_per_second=15))
    page = open_chat(login, alice, conversation, live_server_url)
    page.emulate_media(reduced_motion="reduce")
    send(page, "Slowly")
    page.wait_for_function(
        "() => document.querySelector('#messages [data-role=assistant]:last-child"
        " .message-content')?.textContent.length > 10"
    )
    caret = _after(page, f"{LAST_REPLY} .message-content > :last-child")
    assert caret["content"] != "none" and caret["animation"] == "none"
    wait_for_status(page, "complete")


# --- How it looks ----------------------------------------------------------------------

RICH = (
    "## Results\n\n"
    "| Model | Score | Cost |\n|:--|:-:|--:|\n"
    "| small | $0.81$ | 1.20 |\n| large | $0.93$ | 9.80 |\n\n"
    "The loss is $L = -\\sum_i y_i \\log \\hat y_i$, minimised by\n\n"
    "$$\\theta_{t+1} = \\theta_t - \\eta \\nabla_\\theta L(\\theta_t)$$\n\n"
    "```python\ndef step(theta, grad, lr=0.1):\n    return theta - lr * grad\n```\n"
)


def test_a_rich_reply_looks_right_on_desktop_phone_and_in_dark_mode(
    login, conversation, alice, fake_provider, live_server_url
):
    fake_provider.script(Reply(content=[RICH]))
    page = open_chat(login, alice, conversation, live_server_url)
    send(page, "Show me everything")
    wait_for_status(page, "complete")
    reply = page.locator(LAST_REPLY)
    expect(reply.locator(".katex")).to_have_count(4)
    expect(reply.locator("table td.align-right").first).to_have_css("text-align", "right")
    expect(reply.locator(".code-block .copy-code")).to_have_count(1)
    save_screenshot(page, "comfort-rich-desktop")
    page.emulate_media(color_scheme="dark")
    save_screenshot(page, "comfort-rich-dark")
    page.emulate_media(color_scheme="light")
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_function("() => window.innerWidth === 390")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    save_screenshot(page, "comfort-rich-phone")
    assert re.search(r"step\(theta", reply.locator("pre").inner_text())
