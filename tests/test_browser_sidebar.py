"""The sidebar in Chromium: date groups, inline rename, delete, archive and search."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from conversations import selectors, services
from conversations.models import Conversation, Message
from tests.conftest import save_screenshot
from tests.factories import ChatModelFactory, ConversationFactory, thread

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def make(owner, title, *, days_ago=0, archived=False):
    conversation = ConversationFactory(
        owner=owner, chat_model=ChatModelFactory(), title=title, archived=archived
    )
    # updated_at is auto_now: a queryset update is the way to put it in the past.
    when = timezone.now() - timedelta(days=days_ago)
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=when)
    return conversation


def item(page, conversation):
    return page.locator(f"#sidebar-item-{conversation.uuid}")


def group(page, key):
    return page.locator(f'.conversation-group[data-group="{key}"]')


def test_conversations_are_grouped_by_date(login, alice, live_server_url, browser):
    for title, days in [
        ("Groceries", 0),
        ("Tax return", 0),
        ("Bike repair", 1),
        ("Trip to Kyoto", 3),
        ("Learning Rust", 6),
        ("Old recipes", 30),
        ("Thesis notes", 400),
    ]:
        make(alice, title, days_ago=days)
    page = login(alice)
    headings = page.locator(".conversation-group-title")
    expect(headings).to_have_text(["Today", "Yesterday", "Previous 7 days", "Older"])
    expect(group(page, "today").locator(".conversation-link")).to_have_text(
        ["Tax return", "Groceries"]
    )
    expect(group(page, "yesterday").locator(".conversation-link")).to_have_text(["Bike repair"])
    expect(group(page, "previous_7_days").locator(".conversation-link")).to_have_text(
        ["Trip to Kyoto", "Learning Rust"]
    )
    expect(group(page, "older").locator(".conversation-link")).to_have_text(
        ["Old recipes", "Thesis notes"]
    )
    save_screenshot(page, "sidebar-groups-desktop")
    page.emulate_media(color_scheme="dark")
    save_screenshot(page, "sidebar-groups-dark")

    phone = browser.new_context(viewport=PHONE, has_touch=True, is_mobile=True)
    small = login(alice, phone.new_page())
    small.click("#menu-button")  # on a phone the sidebar is a drawer
    expect(small.locator(".conversation-group-title").first).to_have_text("Today")
    # No hover on a touch screen: the actions are shown, and nothing overflows sideways.
    expect(small.locator(".conversation-item").first.locator(".conversation-actions")).to_have_css(
        "opacity", "1"
    )
    assert small.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    save_screenshot(small, "sidebar-groups-phone")
    phone.close()


def test_rename_inline_saves_with_enter_and_cancels_with_escape(login, alice, live_server_url):
    conversation = make(alice, "Untitled thoughts")
    page = login(alice)
    page.goto(f"{live_server_url}/c/{conversation.uuid}/")
    row = item(page, conversation)
    link = row.locator(".conversation-link")
    box = row.locator(".rename-form input[name=title]")

    row.get_by_role("button", name="Rename").click()
    expect(box).to_be_visible()
    expect(box).to_be_focused()
    expect(box).to_have_value("Untitled thoughts")
    box.fill("Garden plans")
    save_screenshot(page, "sidebar-rename-desktop")
    box.press("Enter")
    expect(link).to_have_text("Garden plans")
    expect(box).to_be_hidden()
    expect(page.locator("h1.chat-title")).to_have_text("Garden plans")
    conversation.refresh_from_db()
    assert conversation.title == "Garden plans" and conversation.title_from_user

    expect(link).to_be_focused()
    row.get_by_role("button", name="Rename").click()
    box.fill("Something I will not keep")
    box.press("Escape")
    expect(box).to_be_hidden()
    expect(row.get_by_role("button", name="Rename")).to_be_focused()
    expect(link).to_have_text("Garden plans")
    conversation.refresh_from_db()
    assert conversation.title == "Garden plans"
    # Opened again, the box starts from the saved title, not the discarded text.
    row.get_by_role("button", name="Rename").click()
    expect(box).to_have_value("Garden plans")
    box.press("Escape")

    page.reload()
    expect(item(page, conversation).locator(".conversation-link")).to_have_text("Garden plans")
    expect(page.locator("h1.chat-title")).to_have_text("Garden plans")


def test_a_blank_rename_changes_nothing(login, alice, live_server_url):
    conversation = make(alice, "Keep me")
    page = login(alice)
    row = item(page, conversation)
    row.get_by_role("button", name="Rename").click()
    row.locator("input[name=title]").fill("   ")
    row.locator("input[name=title]").press("Enter")
    expect(row.locator("input[name=title]")).to_be_hidden()
    expect(row.locator(".conversation-link")).to_have_text("Keep me")
    conversation.refresh_from_db()
    assert conversation.title == "Keep me" and not conversation.title_from_user


def test_delete_asks_first_dismissing_keeps_it_accepting_removes_it(login, alice, live_server_url):
    keep = make(alice, "Keep this one")
    doomed = make(alice, "Delete this one")
    page = login(alice)

    def deletes(request):
        return request.method == "POST" and str(doomed.uuid) in request.url

    sent = []
    page.on("request", lambda request: deletes(request) and sent.append(request))
    messages = []
    page.once("dialog", lambda dialog: (messages.append(dialog.message), dialog.dismiss()))
    # The click returns once the dialog is answered: confirm() blocks the page's handler.
    item(page, doomed).get_by_role("button", name="Delete").click()
    assert messages == ["Delete “Delete this one”? This cannot be undone."]
    expect(item(page, doomed)).to_be_visible()
    assert Conversation.objects.filter(pk=doomed.pk).exists()

    page.once("dialog", lambda dialog: dialog.accept())
    with page.expect_response(lambda response: deletes(response.request)):
        item(page, doomed).get_by_role("button", name="Delete").click()
    # Had the dismissed dialog let a request through, it would have gone before this one.
    assert len(sent) == 1, "only the accepted dialog deleted"
    expect(item(page, doomed)).to_have_count(0)
    expect(item(page, keep)).to_be_visible()
    assert not Conversation.objects.filter(pk=doomed.pk).exists()


def test_deleting_the_open_conversation_goes_home(login, alice, live_server_url):
    conversation = make(alice, "Open right now")
    page = login(alice)
    page.goto(f"{live_server_url}/c/{conversation.uuid}/")
    page.once("dialog", lambda dialog: dialog.accept())
    item(page, conversation).get_by_role("button", name="Delete").click()
    page.wait_for_url(f"{live_server_url}/")
    expect(page.locator(".conversation-item")).to_have_count(0)
    assert not Conversation.objects.filter(pk=conversation.pk).exists()


def test_archive_then_find_it_among_archived_and_unarchive(login, alice, live_server_url):
    stays = make(alice, "Stays in the list")
    filed = make(alice, "File me away", days_ago=2)
    page = login(alice)
    item(page, filed).get_by_role("button", name="Archive").click()
    expect(item(page, filed)).to_have_count(0)
    expect(item(page, stays)).to_be_visible()

    page.click("#archived-link")
    page.wait_for_url(f"{live_server_url}/archived/")
    archived = page.locator(f"#archived-item-{filed.uuid}")
    expect(archived).to_contain_text("File me away")
    expect(page.locator(".archived-empty")).to_be_hidden()
    archived.get_by_role("button", name="Unarchive").click()
    expect(archived).to_have_count(0)
    expect(page.locator(".archived-empty")).to_be_visible()
    # Back in the sidebar, under the date of its last activity.
    expect(group(page, "previous_7_days").locator(f"#sidebar-item-{filed.uuid}")).to_be_visible()
    filed.refresh_from_db()
    assert not filed.archived


def test_search_finds_a_message_and_opens_the_conversation_at_it(
    login, alice, live_server_url, browser
):
    make(alice, "Unrelated", days_ago=1)
    conversation = make(alice, "Animals")
    messages = thread(
        conversation,
        "Tell me about foxes.",
        "Foxes are small omnivores.",
        "Where does the arctic fox live?",
        "The arctic fox lives in the tundra and has <b>thick</b> fur.",
        "Thanks!",
        "You are welcome.",
    )
    target = messages[3]
    page = login(alice)
    page.fill("#sidebar-search input[name=q]", "tundra")
    hit = page.locator("#search-results .search-hit-link")
    expect(hit).to_have_count(1)
    expect(hit.locator("mark")).to_have_text("tundra")
    expect(hit.locator(".search-hit-snippet")).to_contain_text("has <b>thick</b> fur")
    save_screenshot(page, "sidebar-search-desktop")

    hit.click()
    page.wait_for_url(re.compile(rf"/c/{conversation.uuid}/\?m={target.uuid}#m-{target.uuid}$"))
    expect(page.locator(f"#m-{target.uuid}")).to_be_in_viewport()

    phone = browser.new_context(viewport=PHONE, has_touch=True, is_mobile=True)
    small = login(alice, phone.new_page())
    small.click("#menu-button")  # on a phone the sidebar is a drawer
    small.fill("#sidebar-search input[name=q]", "fox")
    expect(small.locator("#search-results .search-hit-link")).to_have_count(1)
    expect(small.locator("#conversation-list")).to_be_hidden()
    assert small.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    save_screenshot(small, "sidebar-search-phone")
    # Escape clears the box, which brings the list back.
    small.press("#sidebar-search input[name=q]", "Escape")
    expect(small.locator("#sidebar-search input[name=q]")).to_have_value("")
    expect(small.locator("#search-results")).to_be_hidden()
    expect(small.locator("#conversation-list")).to_be_visible()
    phone.close()


def test_a_search_hit_on_an_older_version_opens_that_version(login, alice, live_server_url):
    conversation = make(alice, "Versions")
    question, answer = thread(conversation, "Name a bird.", "The kingfisher is bright blue.")
    services.message_edit(message=question, content="Name a fish.")
    Message.objects.filter(conversation=conversation, status="pending").update(status="complete")
    page = login(alice)
    page.fill("#sidebar-search input[name=q]", "kingfisher")
    hit = page.locator("#search-results .search-hit-link")
    expect(hit).to_have_count(1)
    hit.click()
    page.wait_for_url(re.compile(rf"/c/{conversation.uuid}/\?m={answer.uuid}#m-{answer.uuid}$"))
    expect(page.locator(f"#m-{answer.uuid}")).to_be_in_viewport()
    expect(page.locator("#other-version")).to_have_count(0)
    assert selectors.thread_leaf(conversation).id == answer.id


def test_search_with_no_match_says_so_and_a_title_match_opens_the_conversation(
    login, alice, live_server_url
):
    conversation = make(alice, "Sourdough baking")
    page = login(alice)
    page.fill("#sidebar-search input[name=q]", "quasar")
    expect(page.locator("#search-results .search-empty")).to_contain_text("No chats match")
    page.fill("#sidebar-search input[name=q]", "sourdough")
    hit = page.locator("#search-results .search-hit-link")
    expect(hit).to_have_text(re.compile("Sourdough baking"))
    hit.click()
    page.wait_for_url(f"{live_server_url}/c/{conversation.uuid}/")
