"""The sidebar's search by meaning: conversations whose passages are close to the query in
recall's index, after the word matches, marked as such, and only the user's own."""

import pytest
from django.urls import reverse

from conversations import search, services
from tests.factories import ConversationFactory, UserFactory, thread
from tests.markers import vectors_only

pytestmark = [pytest.mark.django_db, vectors_only]

CAT = "My cat Whiskers loves sleeping on the sofa all afternoon."
REPORT = "The quarterly report is due on the fourteenth of March."
CHINESE_CAT = "我的猫叫小花，是一只三岁的橘猫。"


@pytest.fixture
def chats(user, chat_model, recall_on):
    made = {}
    for title, text in [("Home", CAT), ("Work", REPORT), ("家", CHINESE_CAT)]:
        conversation = ConversationFactory(owner=user, chat_model=chat_model, title=title)
        (message,) = thread(conversation, text)
        services.message_index(message_id=message.id)
        made[title] = (conversation, message)
    return made


def test_a_query_sharing_no_word_finds_the_chat_by_meaning(user, chats):
    hits = search.search_for_user(user, "feline nap")
    assert [(h.conversation.title, h.by_meaning) for h in hits] == [("Home", True)]
    assert hits[0].message_uuid == chats["Home"][1].uuid
    assert "Whiskers" in hits[0].snippet


def test_meaning_crosses_languages_and_scripts(user, chats):
    titles = [h.conversation.title for h in search.search_for_user(user, "猫咪") if h.by_meaning]
    assert titles[0] == "家"


def test_nothing_close_in_meaning_finds_nothing(user, chats):
    assert search.search_for_user(user, "banana bread recipe") == []


def test_a_chat_found_by_its_words_is_not_repeated_by_meaning(user, chats):
    hits = search.search_for_user(user, "Whiskers")
    home = [h for h in hits if h.conversation.title == "Home"]
    assert len(home) == 1 and not home[0].by_meaning


def test_another_users_chats_are_never_found_by_meaning(chats, chat_model):
    stranger = UserFactory(username="stranger")
    assert search.search_for_user(stranger, "feline nap") == []


def test_without_recall_there_is_no_search_by_meaning(user, chats, settings):
    settings.RECALL_ENABLED = False
    assert search.search_for_user(user, "feline nap") == []


def test_the_results_mark_what_was_found_by_meaning(client, user, chats):
    client.force_login(user)
    html = client.get(reverse("search"), {"q": "feline nap"}, HTTP_HX_REQUEST="true")
    assert "By meaning" in html.content.decode()
