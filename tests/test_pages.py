"""Windows of a long thread: the latest page, older and newer pages, a jump to a message."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conversations import pages, selectors, services
from conversations.models import Conversation, Message
from tests.factories import ChatModelFactory, ConversationFactory, UserFactory, long_thread, thread

pytestmark = pytest.mark.django_db

PAGE = selectors.PAGE_SIZE


@pytest.fixture(scope="module")
def _long_history(module_db):
    """5,000 messages of `user`'s, written once for the module (the tests only read them;
    what a test writes is rolled back after it, see `module_db`)."""
    with module_db.writing():
        owner = UserFactory(username="alice")  # the `user` fixture's account
        conversation = ConversationFactory(owner=owner, chat_model=ChatModelFactory())
        return conversation.pk, long_thread(conversation, 5_000)


@pytest.fixture
def long_conversation(_long_history, user, chat_model):
    conversation_pk, message_ids = _long_history
    conversation = Conversation.objects.get(pk=conversation_pk)
    assert conversation.owner == user and conversation.chat_model == chat_model
    return conversation, list(message_ids)


def ids(page) -> list[int]:
    return [m.id for m in page.messages]


def test_latest_page_holds_the_newest_messages_and_offers_older(long_conversation):
    conversation, message_ids = long_conversation
    page = pages.latest_page(conversation)
    assert ids(page) == message_ids[-PAGE:]
    assert page.has_older and not page.has_newer


def test_older_pages_walk_back_to_the_first_message_without_gaps(long_conversation):
    conversation, message_ids = long_conversation
    seen = ids(pages.latest_page(conversation))
    page = pages.latest_page(conversation)
    for _ in range(3):
        page = pages.older_page(conversation, page.messages[0])
        seen = ids(page) + seen
    assert seen == message_ids[-4 * PAGE :]
    first = Message.objects.get(pk=message_ids[PAGE])
    oldest = pages.older_page(conversation, first)
    assert ids(oldest) == message_ids[:PAGE] and not oldest.has_older


def test_a_long_thread_opens_with_as_few_queries_as_a_short_one(long_conversation, user):
    conversation, _ = long_conversation
    short = ConversationFactory(owner=user, chat_model=conversation.chat_model)
    long_thread(short, 60)

    def count(target) -> int:
        with CaptureQueriesContext(connection) as queries:
            pages.latest_page(target)
        return len(queries)

    assert count(conversation) == count(short)


def test_a_jump_shows_the_message_with_context_and_both_loaders(long_conversation):
    conversation, message_ids = long_conversation
    target = Message.objects.get(pk=message_ids[1_000])
    page = pages.page_around(conversation, target)
    assert target.id in ids(page)
    assert ids(page) == message_ids[1_000 - pages.JUMP_CONTEXT : 1_000 - pages.JUMP_CONTEXT + PAGE]
    assert page.has_older and page.has_newer
    assert page.tail_uuid == str(Message.objects.get(pk=message_ids[-1]).uuid)


def test_newer_pages_continue_to_the_tail_and_stop_there(long_conversation):
    conversation, message_ids = long_conversation
    after = Message.objects.get(pk=message_ids[-PAGE])
    tail = Message.objects.get(pk=message_ids[-3])
    page = pages.newer_page(conversation, after, tail)
    assert ids(page) == message_ids[-PAGE + 1 : -2]
    assert not page.has_newer
    middle = Message.objects.get(pk=message_ids[100])
    page = pages.newer_page(conversation, middle, tail)
    assert ids(page) == message_ids[101 : 101 + PAGE] and page.has_newer


def test_a_jump_near_the_end_is_the_latest_page(conversation):
    messages = thread(conversation, *[f"m{i}" for i in range(10)])
    page = pages.page_around(conversation, messages[3])
    assert ids(page) == [m.id for m in messages] and not page.has_newer


def test_a_jump_to_another_branch_is_not_on_screen(conversation):
    question, _ = thread(conversation, "Q", "A")
    services.message_edit(message=question, content="Q2")
    assert pages.page_around(conversation, question) is None


# --- Views ------------------------------------------------------------------------------


def test_page_view_opens_at_the_latest_messages(client, long_conversation, user):
    conversation, message_ids = long_conversation
    client.force_login(user)
    html = client.get(f"/c/{conversation.uuid}/").content.decode()
    assert html.count('class="message message--') == PAGE
    assert 'id="load-older"' in html and 'id="load-newer"' not in html


def test_page_view_jumps_to_a_message(client, long_conversation, user):
    conversation, message_ids = long_conversation
    target = Message.objects.get(pk=message_ids[2_000])
    client.force_login(user)
    html = client.get(f"/c/{conversation.uuid}/?m={target.uuid}").content.decode()
    assert f'id="m-{target.uuid}"' in html
    assert f'data-jump-to="{target.uuid}"' in html
    assert 'id="load-older"' in html and 'id="load-newer"' in html


def test_page_view_offers_an_older_version_without_switching_to_it(client, conversation, user):
    question, answer = thread(conversation, "Q", "A")
    services.message_edit(message=question, content="Q2")
    Message.objects.filter(conversation=conversation, status="pending").update(status="complete")
    leaf = selectors.thread_leaf(conversation)
    client.force_login(user)
    html = client.get(f"/c/{conversation.uuid}/?m={answer.uuid}").content.decode()
    assert f'id="m-{answer.uuid}"' not in html
    assert 'id="other-version"' in html and f'value="{answer.uuid}"' in html
    assert "data-jump-to" not in html
    assert selectors.thread_leaf(conversation).id == leaf.id  # a GET changes nothing


def test_opening_a_message_on_an_older_version_brings_its_branch_on_screen(
    client, conversation, user
):
    question, answer = thread(conversation, "Q", "A")
    services.message_edit(message=question, content="Q2")
    Message.objects.filter(conversation=conversation, status="pending").update(status="complete")
    client.force_login(user)
    response = client.post(f"/c/{conversation.uuid}/open/", {"m": str(answer.uuid)})
    assert response.status_code == 302
    assert response["Location"] == f"/c/{conversation.uuid}/?m={answer.uuid}#m-{answer.uuid}"
    assert selectors.thread_leaf(conversation).id == answer.id
    html = client.get(response["Location"]).content.decode()
    assert f'id="m-{answer.uuid}"' in html and 'id="other-version"' not in html


def test_opening_a_message_from_htmx_redirects_the_page(client, conversation, user):
    question, answer = thread(conversation, "Q", "A")
    client.force_login(user)
    response = client.post(
        f"/c/{conversation.uuid}/open/", {"m": str(question.uuid)}, HTTP_HX_REQUEST="true"
    )
    assert response["HX-Redirect"] == f"/c/{conversation.uuid}/?m={question.uuid}#m-{question.uuid}"
    assert selectors.thread_leaf(conversation).id == answer.id  # already on screen: no switch


def test_opening_a_message_of_another_users_chat_is_not_found(client, conversation, user):
    question, _ = thread(conversation, "Q", "A")
    other = UserFactory(username="mallory")
    client.force_login(other)
    response = client.post(f"/c/{conversation.uuid}/open/", {"m": str(question.uuid)})
    assert response.status_code == 404
    client.force_login(user)
    assert client.post(f"/c/{conversation.uuid}/open/", {"m": "nope"}).status_code == 404
    assert client.get(f"/c/{conversation.uuid}/open/").status_code == 405


def test_messages_view_returns_the_older_page(client, long_conversation, user):
    conversation, message_ids = long_conversation
    first_shown = Message.objects.get(pk=message_ids[-PAGE])
    client.force_login(user)
    response = client.get(f"/c/{conversation.uuid}/messages/?before={first_shown.uuid}")
    html = response.content.decode()
    assert response.status_code == 200
    assert html.count('class="message message--') == PAGE
    assert f'id="m-{first_shown.uuid}"' not in html
    assert 'id="load-older"' in html


def test_messages_view_needs_a_message_of_this_conversation(
    client, long_conversation, user, other_user
):
    conversation, message_ids = long_conversation
    client.force_login(user)
    assert client.get(f"/c/{conversation.uuid}/messages/").status_code == 400
    assert client.get(f"/c/{conversation.uuid}/messages/?before=nonsense").status_code == 400
    client.force_login(other_user)
    some = Message.objects.get(pk=message_ids[10])
    assert client.get(f"/c/{conversation.uuid}/messages/?before={some.uuid}").status_code == 404


def test_a_very_long_message_is_shown_collapsed_and_whole_on_request(
    client, conversation, user, other_user, settings
):
    settings.MESSAGE_COLLAPSE_AFTER_CHARS, settings.MESSAGE_COLLAPSED_CHARS = 5_000, 1_000
    head, tail = "start " * 200, "the very end"
    question, answer = thread(conversation, head + "x" * 20_000 + tail, head + "y" * 20_000 + tail)
    client.force_login(user)
    page = client.get(f"/c/{conversation.uuid}/").content.decode()
    assert tail not in page, "neither message is on the page whole"
    assert page.count("start start") >= 2 and page.count("Show all") == 2
    for message in (question, answer):
        whole = client.get(f"/messages/{message.uuid}/").content.decode()
        assert tail in whole and "Show all" not in whole
        assert f'id="m-{message.uuid}"' in whole  # it replaces the collapsed one
    client.force_login(other_user)
    assert client.get(f"/messages/{answer.uuid}/").status_code == 404


def test_a_message_under_the_collapse_length_is_shown_whole(client, conversation, user):
    thread(conversation, "A short question", "A short answer.")
    client.force_login(user)
    page = client.get(f"/c/{conversation.uuid}/").content.decode()
    assert "A short answer." in page and "Show all" not in page
