"""A user's account and the site's set-up, in Chromium against daphne: a password changed in
one browser signs the others out at once, and a site without a provider (or with one that
cannot be reached) says so where the user would send."""

import re

import pytest
from playwright.sync_api import expect

from tests.conftest import save_screenshot
from tests.factories import ChatModelFactory, ConversationFactory, UserFactory
from tests.live_server import free_port
from tests.waits import wait_for_socket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery"  # the factories' password
NO_PROVIDER = {
    f"{prefix}_{suffix}": ""
    for prefix in ("DEEPSEEK", "DASHSCOPE", "ZHIPUAI", "OPENAI", "LOCAL")
    for suffix in ("API_KEY", "BASE_URL")
}


def test_a_password_change_signs_out_the_users_other_browser_and_keeps_this_one(
    login, alice, browser, live_server_url
):
    conversation = ConversationFactory(owner=alice, chat_model=ChatModelFactory(), title="Open")
    elsewhere = browser.new_context(viewport={"width": 1280, "height": 860})
    try:
        other = login(alice, elsewhere.new_page())
        other.goto(f"{live_server_url}/c/{conversation.uuid}/")
        wait_for_socket(other)

        here = login(alice)
        here.goto(f"{live_server_url}/accounts/password/")
        here.fill("input[name=old_password]", PASSWORD)
        here.fill("input[name=new_password1]", "a much newer secret 42")
        here.fill("input[name=new_password2]", "a much newer secret 42")
        here.locator("#password-form button[type=submit]").click()
        here.wait_for_url(f"{live_server_url}/")
        expect(here.locator("body")).to_contain_text("Password changed")

        # The other browser's open chat hears at once: its socket closes, the page says so.
        expect(other.locator("body")).to_have_class(re.compile(r"\bis-signed-out\b"))
        expect(other.locator("#notice")).to_contain_text("You were signed out")
        expect(other.locator("[ws-connect]")).to_have_attribute("data-socket", "closed")
        # ...and does not claim to be reconnecting: it never will.
        before = "e => getComputedStyle(e, '::before').content"
        assert other.locator(".composer-area").evaluate(before) == "none"
        save_screenshot(other, "password-change-other-browser-signed-out")
        other.reload()
        assert "/accounts/login/" in other.url, other.url

        # This browser stays signed in.
        here.goto(f"{live_server_url}/c/{conversation.uuid}/")
        wait_for_socket(here)
        expect(here.locator("h1.chat-title")).to_have_text("Open")
        save_screenshot(here, "password-change-this-browser-stays")
    finally:
        elsewhere.close()


def test_with_no_provider_the_page_says_what_to_do_and_send_waits(login, alice, daphne):
    server = daphne(**NO_PROVIDER)
    page = login(alice)
    page.goto(f"{server.url}/")
    setup = page.locator("#provider-setup")
    expect(setup).to_contain_text("No model provider is set up yet")
    expect(setup).to_contain_text("DEEPSEEK_API_KEY")
    expect(setup).to_contain_text("LOCAL_BASE_URL=http://127.0.0.1:11434/v1")
    expect(setup).to_contain_text("make run")
    expect(page.locator("#send")).to_be_disabled()
    expect(page.locator("#send")).to_have_attribute("aria-describedby", "provider-setup")
    expect(setup.get_by_role("link", name="Providers in the admin")).to_have_count(0)
    save_screenshot(page, "no-provider-set-up")

    admin = login(UserFactory(is_staff=True, is_superuser=True))
    admin.goto(f"{server.url}/")
    link = admin.locator("#provider-setup").get_by_role("link", name="Providers in the admin")
    expect(link).to_have_attribute("href", "/admin/conversations/provider/")
    expect(admin.locator("#send")).to_be_disabled()
    save_screenshot(admin, "no-provider-set-up-admin")


def test_the_model_picker_marks_a_provider_that_cannot_be_reached(login, alice, daphne):
    ChatModelFactory(name="fake-far")
    server = daphne(LOCAL_BASE_URL=f"http://127.0.0.1:{free_port()}/v1")
    page = login(alice)
    option = page.locator("select[name=model] option", has_text="fake-far")
    # The first page asks the provider in the background; a later one shows what it found.
    for _ in range(40):
        page.goto(f"{server.url}/")
        if "unreachable at the last look" in option.inner_text():
            break
        page.wait_for_timeout(250)
    expect(option).to_have_text("Local server · fake-far (unreachable at the last look)")
    save_screenshot(page, "model-picker-unreachable-provider")
