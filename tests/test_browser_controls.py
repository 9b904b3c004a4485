"""The chat's controls in Chromium against daphne, Postgres and the fake provider: Think and
JSON beside the composer, the header's model switch, the settings popover, and images on
the new-chat page."""

import base64
import re

import pytest
from playwright.sync_api import expect

from conversations.models import Conversation
from tests.conftest import save_screenshot
from tests.factories import (
    ChatModelFactory,
    ConversationFactory,
    UsageBudgetFactory,
    UsageRecordFactory,
)
from tests.fake_provider import Reply
from tests.test_attachments import PNG
from tests.test_browser import open_chat, reply_text, send, wait_for_status

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def capable(alice):
    chat_model = ChatModelFactory(name="fake-thinker", supports_thinking=True, supports_json=True)
    return ConversationFactory(owner=alice, chat_model=chat_model, title="Switches")


def test_think_and_json_are_pressed_beside_the_composer_and_reach_the_request(
    login, alice, capable, fake_provider, live_server_url
):
    page = open_chat(login, alice, capable, live_server_url)
    think, json = page.locator("#switch-thinking"), page.locator("#switch-json")
    expect(think).to_have_attribute("aria-pressed", "false")
    expect(json).to_have_attribute("aria-pressed", "false")
    think.click()
    expect(page.locator("#switch-thinking")).to_have_attribute("aria-pressed", "true")
    page.locator("#switch-json").click()
    expect(page.locator("#switch-json")).to_have_attribute("aria-pressed", "true")
    # The pressed state is visible, not only announced.
    pressed = page.locator("#switch-thinking").evaluate("b => getComputedStyle(b).borderColor")
    plain = page.locator("#composer textarea").evaluate("t => getComputedStyle(t).borderColor")
    assert pressed != plain
    save_screenshot(page, "composer-switches-on")
    fake_provider.script(Reply(content='{"answer": 4}'))
    send(page, "What is 2+2?")
    wait_for_status(page, "complete")
    body = fake_provider.chat_requests[-1].json
    assert body["chat_template_kwargs"] == {"enable_thinking": True}
    assert body["response_format"] == {"type": "json_object"}
    # Saved on the conversation: a reload shows them on, one more click turns Think off.
    page.reload()
    expect(page.locator("#switch-thinking")).to_have_attribute("aria-pressed", "true")
    page.locator("#switch-thinking").click()
    expect(page.locator("#switch-thinking")).to_have_attribute("aria-pressed", "false")
    capable.refresh_from_db()
    assert not capable.thinking_enabled and capable.json_mode


def test_the_header_switches_the_model_for_the_next_reply(
    login, alice, fake_provider, live_server_url
):
    small = ChatModelFactory(name="fake-small", context_window=8_000)
    wide = ChatModelFactory(name="fake-wide", context_window=128_000, supports_thinking=True)
    conversation = ConversationFactory(owner=alice, chat_model=small, title="Switching")
    page = open_chat(login, alice, conversation, live_server_url)
    picker = page.locator("header #model-switch select[name=model]")
    expect(picker.locator("option:checked")).to_have_text("Local server · fake-small")
    expect(page.locator("#switch-thinking")).to_have_count(0)
    expect(page.locator("#context-gauge")).to_have_attribute("data-window", "8000")
    picker.select_option(str(wide.pk))
    # The gauge, the composer's switches and the settings follow the new model.
    expect(page.locator("#context-gauge")).to_have_attribute("data-window", "128000")
    expect(page.locator("#switch-thinking")).to_have_count(1)
    expect(page.locator("header #model-switch option:checked")).to_have_text(
        "Local server · fake-wide"
    )
    save_screenshot(page, "header-model-switch")
    fake_provider.script(Reply(content="From the wide one."))
    send(page, "Who answers?")
    wait_for_status(page, "complete")
    assert fake_provider.chat_requests[-1].json["model"] == "fake-wide"
    assert reply_text(page).strip() == "From the wide one."
    # A new chat starts on it.
    page.click("#new-conversation")
    expect(page.locator("select[name=model] option:checked")).to_have_text(
        "Local server · fake-wide"
    )


def _box(page, selector: str) -> dict:
    return page.locator(selector).bounding_box()


def _overlap(a: dict, b: dict) -> bool:
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def test_the_settings_popover_leaves_the_thread_in_view_and_closes_on_save(
    login, alice, capable, fake_provider, live_server_url
):
    fake_provider.script(Reply(content=" ".join(["A long reply line."] * 60)))
    page = open_chat(login, alice, capable, live_server_url)
    send(page, "Say a lot")
    wait_for_status(page, "complete")
    page.click(".chat-settings:not(.chat-export) > summary")
    form = page.locator("#conversation-settings")
    expect(form).to_be_visible()
    page.locator("#conversation-settings details.settings-parameters > summary").click()
    for part in ("#messages [data-role=user]", "#messages [data-role=assistant]", "#composer"):
        assert not _overlap(_box(page, "#conversation-settings"), _box(page, part)), part
    save_screenshot(page, "settings-panel-open")
    page.fill("#conversation-settings textarea[name=system_prompt]", "Be brief.")
    page.click("#conversation-settings > button[type=submit]")
    expect(page.locator("#conversation-settings")).to_be_hidden()
    capable.refresh_from_db()
    assert capable.system_prompt == "Be brief."
    # Opened again, it says the save went through; a refused one stays open with why.
    page.click(".chat-settings:not(.chat-export) > summary")
    expect(page.locator("#conversation-settings .notice--info")).to_have_text("Saved.")
    page.locator("#conversation-settings details.settings-parameters > summary").click()
    page.fill("#conversation-settings input[name=max_tokens]", "999999")
    page.locator("#conversation-settings input[name=max_tokens]").evaluate(
        "input => input.removeAttribute('max')"
    )
    page.click("#conversation-settings > button[type=submit]")
    expect(page.locator("#conversation-settings .notice--error")).to_contain_text("Max tokens")
    expect(page.locator("#conversation-settings")).to_be_visible()


def test_an_image_attached_on_the_new_chat_page_goes_with_the_first_message(
    login, alice, fake_provider, live_server_url, tmp_path
):
    vision = ChatModelFactory(name="fake-vision", supports_vision=True)
    image = tmp_path / "dot.png"
    image.write_bytes(PNG)
    fake_provider.script(Reply(content="A single red pixel."))
    page = login(alice)  # the new-chat page
    page.select_option("select[name=model]", str(vision.pk))
    page.set_input_files("#attach-input", str(image))
    expect(page.locator("#composer-attachments .attachment-chip")).to_have_count(1)
    save_screenshot(page, "new-chat-image-attached")
    send(page, "What is this?")
    page.wait_for_url(re.compile(r"/c/[0-9a-f-]+/$"))
    wait_for_status(page, "complete")
    thumb = page.locator("#messages [data-role=user] img.message-image")
    expect(thumb).to_have_count(1)
    parts = fake_provider.chat_requests[-1].json["messages"][-1]["content"]
    image_part = next(p for p in parts if p["type"] == "image_url")
    assert base64.b64decode(image_part["image_url"]["url"].split("base64,", 1)[1]) == PNG
    assert {"type": "text", "text": "What is this?"} in parts


def test_a_refused_first_message_gives_its_image_back(login, alice, live_server_url, tmp_path):
    vision = ChatModelFactory(name="fake-vision", supports_vision=True)
    image = tmp_path / "dot.png"
    image.write_bytes(PNG)
    page = login(alice)
    page.select_option("select[name=model]", str(vision.pk))
    page.set_input_files("#attach-input", str(image))
    expect(page.locator("#composer-attachments .attachment-chip")).to_have_count(1)
    UsageBudgetFactory(token_limit=100)
    UsageRecordFactory(user=alice, prompt_tokens=100, completion_tokens=0)
    send(page, "Look at this")
    expect(page.locator(".notice--error").first).to_contain_text("budget")
    expect(page.locator("#composer textarea")).to_have_value("Look at this")
    expect(page.locator("#composer-attachments .attachment-chip")).to_have_count(1)
    expect(page.locator("select[name=model] option:checked")).to_have_text(
        "Local server · fake-vision"
    )
    save_screenshot(page, "new-chat-refused-with-image")
    assert not Conversation.objects.filter(owner=alice).exists()


def test_think_on_the_new_chat_page_goes_with_the_first_message(
    login, alice, fake_provider, live_server_url
):
    plain = ChatModelFactory(name="fake-plain")
    thinker = ChatModelFactory(name="fake-thinker", supports_thinking=True, supports_json=True)
    page = login(alice)
    page.select_option("select[name=model]", str(plain.pk))
    expect(page.locator("#switch-thinking")).to_have_count(0)
    page.select_option("select[name=model]", str(thinker.pk))
    think = page.locator("#switch-thinking")
    expect(think).to_have_attribute("aria-pressed", "false")
    think.click()
    expect(think).to_have_attribute("aria-pressed", "true")
    save_screenshot(page, "new-chat-think-pressed")
    fake_provider.script(Reply(content="Thought it over."))
    send(page, "Think first")
    page.wait_for_url(re.compile(r"/c/[0-9a-f-]+/$"))
    wait_for_status(page, "complete")
    assert fake_provider.chat_requests[-1].json["chat_template_kwargs"] == {"enable_thinking": True}
    expect(page.locator("#switch-thinking")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#switch-json")).to_have_attribute("aria-pressed", "false")


def test_at_phone_width_the_settings_open_under_the_header_and_push_the_thread_down(
    login, alice, capable, fake_provider, live_server_url, browser
):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        fake_provider.script(Reply(content="Short."))
        page = open_chat(login, alice, capable, live_server_url, context.new_page())
        send(page, "Hi")
        wait_for_status(page, "complete")
        page.click(".chat-settings:not(.chat-export) > summary")
        expect(page.locator("#conversation-settings")).to_be_visible()
        form = _box(page, "#conversation-settings")
        assert form["x"] >= 0 and form["x"] + form["width"] <= 390
        assert form["y"] >= _box(page, ".chat-settings:not(.chat-export) > summary")["y"]
        scroller = _box(page, "#messages-scroll")
        assert scroller["y"] >= form["y"] + form["height"] - 1, "the thread is below, not under"
        save_screenshot(page, "settings-panel-phone")
        page.click("#conversation-settings > button[type=submit]")
        expect(page.locator("#conversation-settings")).to_be_hidden()
    finally:
        context.close()
