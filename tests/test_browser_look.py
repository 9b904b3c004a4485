"""How the site looks and reads, in Chromium: the theme switch (system / light / dark), the
phone layout (the sidebar a drawer, the composer at the bottom, a reply's footer on one
line, nothing scrolling sideways), and axe-core over the main pages in both themes.

Screenshots of every page, in both themes, at phone and laptop sizes, go to test-artifacts/
(look-<page>-<size>-<theme>.png).
"""

from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from conversations.models import MessageStatus, Role
from tests.conftest import save_screenshot
from tests.factories import (
    ChatModelFactory,
    ConversationFactory,
    MessageFactory,
    UsageRecordFactory,
    thread,
)
from tests.waits import wait_for_socket

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = Path(__file__).resolve().parent.parent / "static" / "vendor" / "axe-core-4.14.1.min.js"
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 800}
THEMES = ["light", "dark"]

LONG_TITLE = (
    "Planning a three-week walking trip through the Scottish Highlands with a dog, "
    "two teenagers and an uncertain budget"
)
TABLE = (
    "Here is the plan:\n\n| Day | Route | Distance |\n|:--|:--|--:|\n"
    "| 1 | Fort William to Kinlochleven | 24 km |\n| 2 | Kinlochleven to Glencoe | 15 km |\n"
)
CODE = (
    "A helper to total the distances:\n\n```python\n"
    "def total(legs: list[int]) -> int:\n"
    '    """Kilometres walked."""\n'
    "    return sum(legs)  # every leg counts\n\nprint(total([24, 15]))\n```\n"
)
QUOTE = (
    "As the guidebook says:\n\n> Take a map and a compass, and know how to use them.\n"
    "> The weather turns in minutes.\n\n"
    "The climb is $h = 1345\\,\\mathrm{m}$, so with $g = 9.81$:\n\n$$E = m g h$$\n"
)


@pytest.fixture
def look_world(alice):
    """Alice's world for every page: a long chat (reasoning, a table, code, a quote, math, a
    failed reply, two versions of a reply), an archived chat, a month of usage."""
    model = ChatModelFactory()
    chat = ConversationFactory(owner=alice, chat_model=model, title=LONG_TITLE)
    messages = thread(
        chat,
        "Can you plan the first days?",
        TABLE,
        "And a script to add up the distances?",
        CODE,
        "Anything I should keep in mind?",
        QUOTE,
        "What about the weather next week? https://weather.example.org/forecast/"
        "highlands-fort-william-kinlochleven-glencoe-seven-day-outlook-with-wind-and-rain",
        "",
    )
    for reply in messages[1::2]:
        reply.model_name = "fake-model"
        reply.prompt_tokens, reply.completion_tokens = 1234, 567
        reply.cached_tokens, reply.reasoning_tokens = 256, 120
        reply.duration_ms, reply.time_to_first_token_ms = 4200, 800
        reply.completed_at = timezone.now()
        reply.save()
        UsageRecordFactory(user=alice, conversation=chat, message=reply)
    first = messages[1]
    first.reasoning = "The reader wants short days at first; the dog sets the pace."
    first.reasoning_ms = 3000
    first.save()
    failed = messages[-1]
    failed.status = MessageStatus.FAILED
    failed.error_code = "upstream"
    failed.error_text = "The provider did not answer (HTTP 503). Try again in a moment."
    failed.save()
    # A second version of the quote's reply, so the footer carries its pager too.
    MessageFactory(
        conversation=chat,
        role=Role.ASSISTANT,
        parent=messages[4],
        content="An earlier version of the answer.",
        model_name="fake-model",
    )
    chat.current_leaf = failed
    chat.save(update_fields=["current_leaf"])
    ConversationFactory(owner=alice, chat_model=model, title="Old packing list", archived=True)
    ConversationFactory(owner=alice, chat_model=model, title="Fox facts")
    return chat


def pages(chat) -> dict[str, str]:
    """The main pages, by name: those of a signed-in reader, then the sign-in pages."""
    return {
        "chat": f"/c/{chat.uuid}/",
        "home": "/",
        "search": "/search/?q=walking",
        "archived": "/archived/",
        "usage": "/usage/",
        "settings": "/settings/api/",
        "password": "/accounts/password/",
    }


SIGNED_OUT = {"login": "/accounts/login/", "signup": "/accounts/signup/"}


@pytest.fixture
def look_context(browser):
    """A browser context whose pages take axe-core injected by the test (bypassing the
    site's CSP for that one script: the site itself never serves it to a page)."""
    contexts = []

    def make(viewport, theme):
        context = browser.new_context(viewport=viewport, bypass_csp=True)
        # The opposite system setting: the reader's choice must win over it.
        system = "light" if theme == "dark" else "dark"
        context.add_init_script(f"localStorage.setItem('chatsite-theme', '{theme}')")
        contexts.append(context)
        return context, system

    yield make
    for context in contexts:
        context.close()


def open_page(page, url: str, path: str, system: str) -> None:
    page.emulate_media(color_scheme=system)
    page.goto(url + path)
    if path.startswith("/c/"):
        wait_for_socket(page)
        page.wait_for_function("() => document.querySelectorAll('.katex').length >= 3")
    page.wait_for_load_state("networkidle")


def axe_violations(page, *, include: str | None = None) -> list[str]:
    """axe-core's serious and critical violations on the page (or under `include`), one
    line each: the rule, what it asks, and where."""
    if not page.evaluate("() => !!window.axe"):
        page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        """async (include) => {
          const result = await axe.run(include ? {include: [include]} : document,
                                       {resultTypes: ["violations"]});
          return result.violations
            .filter(v => v.impact === "serious" || v.impact === "critical")
            .map(v => `${v.impact} ${v.id}: ${v.help} at ` + v.nodes.slice(0, 6)
              .map(n => n.target.join(" ") + " ("
                        + (n.failureSummary || "").replace(/\\s+/g, " ") + ")")
              .join("; "));
        }""",
        include,
    )
    return list(found)


def no_sideways_scroll(page) -> bool:
    """Neither the page nor its scrolling main part (the thread, a settings page) is wider
    than the screen. A wide table or code block scrolls in its own box: that is allowed."""
    return page.evaluate(
        """() => [document.scrollingElement, ...document.querySelectorAll(".messages-scroll")]
                 .every(el => el.scrollWidth <= el.clientWidth)"""
    )


def show_the_top(page, screenshot: str) -> None:
    """The thread scrolled to its first messages (the reasoning, the table), photographed."""
    page.evaluate("() => { document.getElementById('messages-scroll').scrollTop = 0; }")
    save_screenshot(page, screenshot)


def heading_is_clear(page) -> bool:
    """Nothing (the menu button, a form) lies over the page's heading."""
    return page.evaluate(
        """() => {
          const h1 = document.querySelector("h1");
          const box = h1.getBoundingClientRect();
          const points = [[box.left + 4, box.top + box.height / 2],
                          [box.left + box.width / 2, box.top + box.height / 2]];
          return points.every(([x, y]) => h1.contains(document.elementFromPoint(x, y)));
        }"""
    )


# --- axe-core and screenshots over the main pages ---------------------------------------


@pytest.mark.parametrize("theme", THEMES)
def test_the_main_pages_have_no_serious_accessibility_violations(
    theme, login, look_world, alice, live_server_url, look_context
):
    context, system = look_context(LAPTOP, theme)
    page = login(alice, context.new_page())
    problems: dict[str, list[str]] = {}
    for name, path in pages(look_world).items():
        open_page(page, live_server_url, path, system)
        assert page.locator("html").get_attribute("data-theme") == theme
        if name == "chat":
            page.locator(".message-reasoning-block").first.evaluate("el => { el.open = true; }")
        save_screenshot(page, f"look-{name}-laptop-{theme}")
        if name == "chat":
            show_the_top(page, f"look-chat-top-laptop-{theme}")
        problems[name] = axe_violations(page)
        if name == "chat":
            # The settings popover and the context gauge's panel, opened.
            page.locator(".chat-settings:not(.chat-export) > summary").click()
            problems["chat settings"] = axe_violations(page, include="#conversation-settings")
            page.locator(".chat-settings:not(.chat-export) > summary").click()
            page.locator("#context-gauge > summary").click()
            problems["context gauge"] = axe_violations(page, include=".context-gauge-panel")
            page.locator("#context-gauge > summary").click()
    signed_out = context.browser.new_context(viewport=LAPTOP, bypass_csp=True)
    try:
        anonymous = signed_out.new_page()
        anonymous.goto(live_server_url + "/")  # an origin for localStorage
        anonymous.evaluate(f"localStorage.setItem('chatsite-theme', '{theme}')")
        for name, path in SIGNED_OUT.items():
            open_page(anonymous, live_server_url, path, system)
            save_screenshot(anonymous, f"look-{name}-laptop-{theme}")
            problems[name] = axe_violations(anonymous)
    finally:
        signed_out.close()
    assert {name: found for name, found in problems.items() if found} == {}


@pytest.mark.parametrize("theme", THEMES)
def test_the_main_pages_fit_a_phone(theme, login, look_world, alice, live_server_url, look_context):
    context, system = look_context(PHONE, theme)
    page = login(alice, context.new_page())
    wide: list[str] = []
    covered: list[str] = []
    for name, path in {**pages(look_world), **SIGNED_OUT}.items():
        if name in SIGNED_OUT:
            page.context.clear_cookies()
        open_page(page, live_server_url, path, system)
        if name not in SIGNED_OUT:
            expect(page.locator("#menu-button")).to_be_visible()
            expect(page.locator("#sidebar")).to_be_hidden()
        if not no_sideways_scroll(page):
            wide.append(name)
        if not heading_is_clear(page):
            covered.append(name)
        save_screenshot(page, f"look-{name}-phone-{theme}")
        if name == "chat":
            show_the_top(page, f"look-chat-top-phone-{theme}")
            # The settings popover spans the screen, inside it.
            page.locator(".chat-settings:not(.chat-export) > summary").click()
            box = page.locator("#conversation-settings").bounding_box()
            assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
            save_screenshot(page, f"look-chat-settings-phone-{theme}")
            page.locator(".chat-settings:not(.chat-export) > summary").click()
            assert axe_violations(page) == []
            page.locator("#menu-button").click()
            expect(page.locator("#sidebar")).to_be_in_viewport()
            page.wait_for_function(
                "() => getComputedStyle(document.getElementById('sidebar')).transform === 'none'"
            )
            save_screenshot(page, f"look-drawer-phone-{theme}")
            assert axe_violations(page) == []
            page.keyboard.press("Escape")
    assert wide == [], "these pages scroll sideways on a phone"
    assert covered == [], "on these pages something lies over the heading"


# --- The phone layout -------------------------------------------------------------------


@pytest.fixture
def phone(browser, login, alice):
    context = browser.new_context(viewport=PHONE, has_touch=True, is_mobile=True)
    yield login(alice, context.new_page())
    context.close()


def test_the_drawer_opens_and_closes_on_a_phone(phone, look_world, live_server_url):
    page = phone
    page.goto(f"{live_server_url}/c/{look_world.uuid}/")
    wait_for_socket(page)
    button, sidebar = page.locator("#menu-button"), page.locator("#sidebar")
    expect(sidebar).to_be_hidden()
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(button).to_have_attribute("aria-controls", "sidebar")

    button.click()
    expect(sidebar).to_be_visible()
    expect(button).to_have_attribute("aria-expanded", "true")
    # Focus moves into the drawer, to the chat on screen; the page behind is inert.
    expect(page.locator(".conversation-link.is-current")).to_be_focused()
    assert page.locator("#layout > .main").evaluate("el => el.inert")
    for _ in range(30):
        page.keyboard.press("Tab")
        assert page.evaluate("() => !!document.activeElement.closest('#sidebar')"), (
            "Tab stays inside the open drawer"
        )
    # Escape closes it, and focus goes back to the button. No reply is stopped meanwhile.
    page.keyboard.press("Escape")
    expect(sidebar).to_be_hidden()
    expect(button).to_be_focused()
    expect(button).to_have_attribute("aria-expanded", "false")
    assert not page.locator("#layout > .main").evaluate("el => el.inert")

    # A tap on the backdrop (outside the drawer) closes it.
    button.click()
    expect(sidebar).to_be_visible()
    page.mouse.click(PHONE["width"] - 20, PHONE["height"] // 2)
    expect(sidebar).to_be_hidden()
    # So does its close button.
    button.click()
    page.locator("#drawer-close").click()
    expect(sidebar).to_be_hidden()
    expect(button).to_be_focused()

    # Following a link from the drawer opens that chat, with the drawer shut.
    button.click()
    page.locator(".conversation-link", has_text="Fox facts").click()
    expect(page.locator(".chat-title")).to_have_text("Fox facts")
    expect(page.locator("#sidebar")).to_be_hidden()


def test_the_drawer_is_a_plain_column_on_a_laptop(login, look_world, alice, live_server_url):
    page = login(alice)
    expect(page.locator("#menu-button")).to_be_hidden()
    expect(page.locator("#sidebar")).to_be_visible()
    assert page.locator("#sidebar").bounding_box()["x"] == 0


def test_the_composer_stays_at_the_bottom_of_a_phone_screen(phone, look_world, live_server_url):
    page = phone
    for path in (f"/c/{look_world.uuid}/", "/"):
        page.goto(live_server_url + path)
        composer = page.locator(".composer-area").bounding_box()
        assert abs(composer["y"] + composer["height"] - PHONE["height"]) <= 1, path
        # The thread scrolls inside its own box, not the page.
        assert page.evaluate(
            "() => document.scrollingElement.scrollHeight <= document.scrollingElement.clientHeight"
        ), path
    scroller = page.locator("#messages").bounding_box()
    assert scroller["y"] >= 0


def test_a_reply_footer_is_one_compact_line_on_a_phone(phone, look_world, live_server_url):
    page = phone
    page.goto(f"{live_server_url}/c/{look_world.uuid}/")
    wait_for_socket(page)
    footers = page.locator("#messages .message--assistant .message-footer")
    assert footers.count() >= 3
    for index in range(footers.count()):
        footer = footers.nth(index)
        line = footer.evaluate(
            "el => Math.max(...[...el.children].filter(c => c.offsetParent)"
            ".map(c => c.getBoundingClientRect().height))"
        )
        box = footer.bounding_box()
        assert box["height"] <= line + 1, f"footer {index} wraps: {box['height']} > {line}"
        assert box["x"] + box["width"] <= PHONE["width"]
        # Nothing is cut off at its end: every button is whole, inside the line.
        overflow = footer.evaluate(
            "el => { const right = el.getBoundingClientRect().right;"
            " return [...el.querySelectorAll('button, .message-cost')]"
            ".filter(b => b.getClientRects().length)"
            ".filter(b => b.getBoundingClientRect().right > right + 0.5)"
            ".map(b => b.textContent.trim()); }"
        )
        assert overflow == [], f"footer {index} cuts off {overflow}"
    # The quote's reply carries the most: versions, figures, Copy and Regenerate.
    busy = page.locator(".message--assistant", has=page.locator(".message-versions")).first
    expect(busy.locator(".message-footer .copy-message")).to_be_visible()
    expect(busy.locator(".message-footer .message-cost")).to_be_visible()


def test_a_long_title_wraps_in_the_chat_header_on_a_phone(phone, look_world, live_server_url):
    page = phone
    page.goto(f"{live_server_url}/c/{look_world.uuid}/")
    title = page.locator(".chat-title")
    line = title.evaluate("el => parseFloat(getComputedStyle(el).lineHeight)")
    box = title.bounding_box()
    assert box["height"] >= 2 * line - 1, "the title takes a second line rather than one cut"
    assert box["height"] <= 2 * line + 1, "and no more than two"
    assert box["x"] >= 50, "clear of the menu button"
    assert box["x"] + box["width"] <= PHONE["width"]


def test_a_table_keeps_its_words_whole_on_a_phone(phone, look_world, live_server_url):
    page = phone
    page.goto(f"{live_server_url}/c/{look_world.uuid}/")
    heads = page.locator(".message-content table th")
    expect(heads).to_have_text(["Day", "Route", "Distance"])
    lines = heads.evaluate_all(
        "els => els.map(el => { const r = document.createRange(); r.selectNodeContents(el);"
        " return r.getClientRects().length; })"
    )
    assert lines == [1, 1, 1], "no heading is broken inside a word"


# --- Replies' details -------------------------------------------------------------------


def test_a_blockquote_in_a_reply_looks_like_a_quote(login, look_world, alice, live_server_url):
    page = login(alice)
    page.goto(f"{live_server_url}/c/{look_world.uuid}/")
    quote = page.locator(".message-content blockquote").first
    expect(quote).to_contain_text("Take a map and a compass")
    expect(quote).to_have_css("border-left-width", "4px")
    assert quote.evaluate("el => getComputedStyle(el).backgroundColor") != "rgba(0, 0, 0, 0)"


# --- The theme --------------------------------------------------------------------------


def background(page) -> str:
    return page.evaluate("() => getComputedStyle(document.body).backgroundColor")


def test_the_theme_switch_applies_at_once_and_is_kept_per_browser(
    login, look_world, alice, live_server_url, browser_context
):
    page = login(alice)
    page.emulate_media(color_scheme="light")
    page.goto(f"{live_server_url}/c/{look_world.uuid}/")
    switch = page.locator("[data-theme-switch]")
    expect(switch).to_be_visible()
    expect(switch.get_by_label("System")).to_be_checked()
    assert page.locator("html").get_attribute("data-theme") is None
    assert background(page) == "rgb(255, 255, 255)"
    code = page.locator(".markdown pre").first
    light_code = code.evaluate("el => getComputedStyle(el).backgroundColor")

    switch.get_by_text("Dark").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    assert background(page) == "rgb(21, 23, 26)"
    assert code.evaluate("el => getComputedStyle(el).backgroundColor") != light_code
    assert page.evaluate("localStorage.getItem('chatsite-theme')") == "dark"
    cookies = {c["name"]: c["value"] for c in browser_context.cookies()}
    assert cookies.get("theme") == "dark"

    # The next page comes from the server already dark: no flash of the light theme.
    html = page.request.get(f"{live_server_url}/").text()
    assert '<html lang="en" data-theme="dark">' in html
    assert '<meta name="color-scheme" content="dark">' in html
    page.goto(f"{live_server_url}/usage/")
    expect(page.locator("[data-theme-switch]").get_by_label("Dark")).to_be_checked()
    assert background(page) == "rgb(21, 23, 26)"

    # The cookie gone (cleared by the browser): localStorage still holds the choice, applied
    # by the blocking script in <head>, and the cookie is written again.
    browser_context.clear_cookies(name="theme")
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    assert {c["name"]: c["value"] for c in browser_context.cookies()}.get("theme") == "dark"

    # System follows the system's setting, both ways.
    page.locator("[data-theme-switch]").get_by_text("System").click()
    assert page.locator("html").get_attribute("data-theme") is None
    page.emulate_media(color_scheme="dark")
    assert background(page) == "rgb(21, 23, 26)"
    page.emulate_media(color_scheme="light")
    assert background(page) == "rgb(255, 255, 255)"
    assert "theme" not in {c["name"] for c in browser_context.cookies()}


def test_the_theme_script_runs_before_the_first_paint(login, alice, live_server_url):
    """theme.js is a blocking script ahead of every stylesheet: the choice is on <html>
    before anything is drawn."""
    page = login(alice)
    head = page.locator("head").inner_html()
    script = head.index("js/theme.js")
    assert script < head.index('rel="stylesheet"')
    tag = head[head.rindex("<script", 0, script) : head.index(">", script)]
    assert "defer" not in tag and "async" not in tag


def test_the_sign_in_pages_offer_the_theme_too(browser, live_server_url):
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{live_server_url}/accounts/login/")
    page.locator("[data-theme-switch]").get_by_text("Dark").click()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    page.goto(f"{live_server_url}/accounts/signup/")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    context.close()


@pytest.mark.parametrize("theme", THEMES)
def test_keyboard_focus_shows_a_ring_in_both_themes(
    theme, login, look_world, alice, live_server_url, look_context
):
    context, system = look_context(LAPTOP, theme)
    page = login(alice, context.new_page())
    open_page(page, live_server_url, f"/c/{look_world.uuid}/", system)
    page.locator("#new-conversation").focus()
    page.keyboard.press("Shift+Tab")  # from the start of the page, by keyboard
    rings = []
    for _ in range(16):
        page.keyboard.press("Tab")
        rings.append(
            page.evaluate(
                """() => {
                  const el = document.activeElement;
                  // A theme segment's radio is see-through: its label wears the ring.
                  const shown = el.type === "radio" ? el.closest("label") : el;
                  const style = getComputedStyle(shown);
                  return [el.tagName + (el.id ? "#" + el.id : ""), style.outlineStyle,
                          parseFloat(style.outlineWidth), style.outlineColor];
                }"""
            )
        )
    accent = page.evaluate(
        "() => { const probe = document.createElement('i'); probe.style.color = 'var(--accent)';"
        " document.body.append(probe); const c = getComputedStyle(probe).color;"
        " probe.remove(); return c; }"
    )
    assert [r for r in rings if r[1] == "none" or r[2] < 2 or r[3] != accent] == []
