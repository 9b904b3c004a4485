"""The interface in Chromium set to Chinese: pages, the language switch and websocket pushes."""

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import save_screenshot
from tests.factories import ChatModelFactory, ConversationFactory
from tests.fake_provider import Reply
from tests.test_browser import LAST_REPLY, open_chat, send
from tests.waits import wait_for_socket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def conversation(alice):
    return ConversationFactory(owner=alice, chat_model=ChatModelFactory(), title="狐狸")


@pytest.fixture
def chinese_browser(browser):
    """A browser whose language is Chinese: it sends Accept-Language: zh-CN."""
    contexts = []

    def _context(**options):
        context = browser.new_context(locale="zh-CN", **options)
        contexts.append(context)
        return context

    yield _context
    for context in contexts:
        context.close()


def streamed_reply(fake_provider, page, text: str) -> None:
    """Send `text`; the reply streams for about two seconds."""
    fake_provider.script(Reply(content=[f"词{i} " for i in range(30)], tokens_per_second=15))
    send(page, text)


def test_a_chinese_browser_sees_chinese_switches_to_english_and_pushes_follow(
    login, alice, conversation, fake_provider, live_server_url, chinese_browser
):
    context = chinese_browser(viewport={"width": 1280, "height": 860})
    page = open_chat(login, alice, conversation, live_server_url, context.new_page())
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(page.locator("#send")).to_have_text("发送")
    expect(page.locator("#new-conversation")).to_contain_text("新对话")
    expect(page.locator("#language-switch select")).to_have_value("zh-hans")
    expect(page.locator("#language-switch button")).to_be_hidden()  # i18n.js submits on change

    streamed_reply(fake_provider, page, "讲个关于狐狸的故事")
    reply = page.locator(LAST_REPLY)
    expect(reply.locator(".indicator")).to_have_text("正在生成…", timeout=10_000)
    expect(reply).to_have_attribute("data-status", "complete", timeout=15_000)
    footer = reply.locator(".message-footer")
    expect(footer.locator(".message-speed")).to_contain_text("tokens/秒")
    expect(footer.locator(".message-ttft")).to_contain_text("首字")
    expect(footer).to_contain_text("秒")
    save_screenshot(page, "chat-zh-desktop")

    page.select_option("#language-switch select", "en")
    expect(page.locator("#send")).to_have_text("Send")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    assert page.url == f"{live_server_url}/c/{conversation.uuid}/"
    wait_for_socket(page)  # the reloaded page's own socket
    expect(page.locator("body")).not_to_have_class(re.compile("is-offline"))

    streamed_reply(fake_provider, page, "And another one")
    reply = page.locator(LAST_REPLY)
    expect(reply.locator(".indicator")).to_have_text("Writing…", timeout=10_000)
    expect(reply).to_have_attribute("data-status", "complete", timeout=15_000)
    expect(reply.locator(".message-speed")).to_contain_text("tokens/s")
    expect(reply.locator(".message-ttft")).to_contain_text("first token")
    expect(page.locator("#messages")).not_to_contain_text("tokens/秒")  # the earlier reply too


def test_chinese_at_phone_width(
    login, alice, conversation, fake_provider, live_server_url, chinese_browser
):
    context = chinese_browser(viewport={"width": 390, "height": 844})
    page = open_chat(login, alice, conversation, live_server_url, context.new_page())
    fake_provider.script(Reply(content="狐狸是一种聪明的动物，常出现在民间故事里。"))
    send(page, "你好")
    expect(page.locator(LAST_REPLY)).to_have_attribute("data-status", "complete", timeout=15_000)
    expect(page.locator("#send")).to_have_text("发送")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    save_screenshot(page, "chat-zh-phone")


def test_the_login_page_follows_the_browser_and_its_switch(live_server_url, chinese_browser, db):
    page = chinese_browser().new_page()
    page.goto(f"{live_server_url}/accounts/login/")
    expect(page.locator("#login-form button[type=submit]")).to_have_text("登录")
    page.select_option("#language-switch select", "en")
    expect(page.locator("#login-form button[type=submit]")).to_have_text("Log in")
    assert page.url == f"{live_server_url}/accounts/login/"
