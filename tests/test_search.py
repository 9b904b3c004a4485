"""Search over titles and message text: full-text search, and substrings for CJK."""

import pytest
from django.db import connection
from django.urls import reverse

from conversations import search
from conversations.models import Message, Role
from tests.factories import ConversationFactory, MessageFactory, UserFactory, thread

pytestmark = pytest.mark.django_db


def found(user, q):
    return {(hit.conversation.title, hit.message_uuid) for hit in search.search_for_user(user, q)}


def titles(user, q):
    return [hit.conversation.title for hit in search.search_for_user(user, q)]


@pytest.fixture
def untitled(user, chat_model):
    """A conversation whose title matches nothing, so hits come from its messages."""
    return ConversationFactory(owner=user, chat_model=chat_model, title="Notes")


def test_an_english_word_finds_the_message_that_contains_it(user, untitled):
    question, answer = thread(untitled, "What do foxes eat?", "A red fox eats mice and berries.")
    hits = search.search_for_user(user, "berries")
    assert [hit.message_uuid for hit in hits] == [answer.uuid]
    assert "<mark>berries</mark>" in hits[0].snippet
    assert search.search_for_user(user, "berr") == [], "whole words, not prefixes"
    assert [h.message_uuid for h in search.search_for_user(user, "FOXES")] == [question.uuid]


def test_a_quoted_phrase_matches_only_those_words_in_that_order(user, chat_model):
    in_order = ConversationFactory(owner=user, chat_model=chat_model, title="One")
    reversed_ = ConversationFactory(owner=user, chat_model=chat_model, title="Two")
    MessageFactory(conversation=in_order, content="the brown fox jumps")
    MessageFactory(conversation=reversed_, content="a fox that is brown")
    assert titles(user, '"brown fox"') == ["One"]
    assert sorted(titles(user, "brown fox")) == ["One", "Two"]


def test_a_minus_word_excludes_messages_that_contain_it(user, chat_model):
    for title, text in [("Den", "fox den"), ("Field", "fox field")]:
        conversation = ConversationFactory(owner=user, chat_model=chat_model, title=title)
        MessageFactory(conversation=conversation, content=text)
    assert titles(user, "fox -den") == ["Field"]


def test_chinese_is_found_inside_a_run_of_characters(user, untitled):
    message = MessageFactory(conversation=untitled, content="我最近在学习机器学习和深度学习。")
    hits = search.search_for_user(user, "机器学习")
    assert [hit.message_uuid for hit in hits] == [message.uuid]
    assert "<mark>机器学习</mark>" in hits[0].snippet
    assert search.search_for_user(user, "机器 -深度") == []


def test_mixed_chinese_and_english_needs_every_term(user, chat_model):
    both = ConversationFactory(owner=user, chat_model=chat_model, title="Both")
    one = ConversationFactory(owner=user, chat_model=chat_model, title="One")
    MessageFactory(conversation=both, content="Python 教程：第一课")
    MessageFactory(conversation=one, content="Python only here")
    assert titles(user, "python 教程") == ["Both"]


def test_only_my_own_conversations_are_searched(user, other_user, chat_model):
    mine = ConversationFactory(owner=user, chat_model=chat_model, title="Mine")
    theirs = ConversationFactory(owner=other_user, chat_model=chat_model, title="Secret walrus")
    MessageFactory(conversation=mine, content="walrus facts")
    MessageFactory(conversation=theirs, content="walrus plans")
    assert titles(user, "walrus") == ["Mine"]
    assert titles(other_user, "walrus") == ["Secret walrus"]


def test_archived_conversations_are_found_and_marked(user, client, chat_model):
    archived = ConversationFactory(owner=user, chat_model=chat_model, title="Old", archived=True)
    MessageFactory(conversation=archived, content="the penguin colony")
    assert titles(user, "penguin") == ["Old"]
    client.force_login(user)
    html = client.get(reverse("search"), {"q": "penguin"}, HTTP_HX_REQUEST="true").content
    assert b'class="search-hit-badge">Archived<' in html


def test_a_title_match_links_to_the_conversation_and_a_message_match_to_the_message(
    user, chat_model
):
    by_title = ConversationFactory(owner=user, chat_model=chat_model, title="Sourdough starter")
    by_message = ConversationFactory(owner=user, chat_model=chat_model, title="Baking")
    MessageFactory(conversation=by_title, content="flour and water")
    message = MessageFactory(conversation=by_message, content="my sourdough rose well")
    hits = search.search_for_user(user, "sourdough")
    assert [hit.conversation for hit in hits] == [by_title, by_message], "titles first"
    assert hits[0].url == f"/c/{by_title.uuid}/"
    assert hits[0].title == "<mark>Sourdough</mark> starter"
    assert hits[1].url == f"/c/{by_message.uuid}/?m={message.uuid}#m-{message.uuid}"


def test_one_result_per_conversation_at_most_the_limit(user, chat_model):
    busy = ConversationFactory(owner=user, chat_model=chat_model, title="Busy")
    for n in range(5):
        MessageFactory(conversation=busy, content=f"otter number {n}")
    for n in range(4):
        MessageFactory(
            conversation=ConversationFactory(owner=user, chat_model=chat_model, title=f"C{n}"),
            content="an otter",
        )
    hits = search.search_for_user(user, "otter", limit=3)
    assert len(hits) == 3 and len({hit.conversation.pk for hit in hits}) == 3
    assert len(search.search_for_user(user, "otter")) == 5


def test_system_messages_and_blank_queries_find_nothing(user, untitled):
    MessageFactory(conversation=untitled, role=Role.SYSTEM, content="hidden heron")
    assert search.search_for_user(user, "heron") == []
    assert search.search_for_user(user, "   ") == []
    assert search.search_for_user(user, "-heron") == []


def test_better_ranked_messages_come_first(user, chat_model):
    once = ConversationFactory(owner=user, chat_model=chat_model, title="Once")
    often = ConversationFactory(owner=user, chat_model=chat_model, title="Often")
    MessageFactory(conversation=often, content="lynx lynx lynx, a lynx and more lynx")
    MessageFactory(conversation=once, content="a lynx, mentioned once among many other words")
    assert titles(user, "lynx") == ["Often", "Once"]


def test_a_hostile_message_comes_back_escaped_with_only_our_marks(user, untitled):
    MessageFactory(
        conversation=untitled, content='Look: <img src=x onerror=alert(1)> "quoted" & done'
    )
    (hit,) = search.search_for_user(user, "onerror")
    assert "<img" not in hit.snippet
    assert hit.snippet == (
        "Look: &lt;img src=x <mark>onerror</mark>=alert(1)&gt; &quot;quoted&quot; &amp; done"
    )
    untitled.title = "<script>alert(1)</script> onerror"
    untitled.save()
    (title_hit,) = search.search_for_user(user, "onerror")
    assert title_hit.title == "&lt;script&gt;alert(1)&lt;/script&gt; <mark>onerror</mark>"


def test_a_hostile_query_is_escaped_on_the_results_page(user, client):
    client.force_login(user)
    html = client.get(reverse("search"), {"q": "<b>bold</b>"}).content.decode()
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt;" in html


def test_a_long_message_gives_a_short_snippet_around_the_hit(user, untitled):
    text = "lorem ipsum " * 100 + "the narwhal surfaced " + "dolor sit amet " * 100
    MessageFactory(conversation=untitled, content=text)
    (hit,) = search.search_for_user(user, "narwhal")
    assert hit.snippet.startswith("…") and hit.snippet.endswith("…")
    assert "<mark>narwhal</mark>" in hit.snippet
    assert len(hit.snippet) < search.SNIPPET_CHARS + 40


def test_chinese_matches_by_substring_with_the_websearch_syntax(user, chat_model):
    """Chinese has no spaces, so full-text search sees a whole run as one token: a CJK
    query matches substrings too, every phrase required and `-word` excluded."""
    for title, text in [("A", "红狐狸的洞"), ("B", "那只红狐狸"), ("C", "狐狸，红色的")]:
        conversation = ConversationFactory(owner=user, chat_model=chat_model, title=title)
        MessageFactory(conversation=conversation, content=text)
    assert sorted(titles(user, "狐狸 红")) == ["A", "B", "C"]
    assert sorted(titles(user, '"红狐狸"')) == ["A", "B"]
    assert titles(user, '"红狐狸" -洞') == ["B"]
    assert "<mark>红狐狸</mark>" in search.search_for_user(user, '"红狐狸" -洞')[0].snippet


def test_search_terms_parse_like_websearch():
    terms = search.parse_terms('"red  fox" -den or wolf -"big cat" "unclosed')
    assert terms.include == ("red fox", "wolf", "unclosed")
    assert terms.exclude == ("den", "big cat")


def test_the_results_piece_and_the_page(user, client, untitled):
    message = MessageFactory(conversation=untitled, content="a quokka smiles")
    client.force_login(user)
    piece = client.get(reverse("search"), {"q": "quokka"}, HTTP_HX_REQUEST="true")
    html = piece.content.decode()
    assert piece.status_code == 200 and "<html" not in html
    assert 'id="search-results"' in html
    assert f'href="/c/{untitled.uuid}/?m={message.uuid}#m-{message.uuid}"' in html
    assert "a <mark>quokka</mark> smiles" in html
    page = client.get(reverse("search"), {"q": "quokka"}).content.decode()
    assert "<html" in page and "a <mark>quokka</mark> smiles" in page
    assert 'id="search-page-results"' in page
    empty = client.get(reverse("search"), {"q": "nothing-here"}, HTTP_HX_REQUEST="true")
    assert "No chats match" in empty.content.decode()


def test_search_requires_login(client):
    response = client.get(reverse("search"), {"q": "x"})
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_message_search_uses_the_full_text_index_on_a_large_table(user, chat_model):
    """EXPLAIN on 30,000 messages: a rare word is looked up in message_search_vector."""
    conversations = [
        ConversationFactory(owner=user, chat_model=chat_model, title=f"C{n}") for n in range(30)
    ]
    someone = UserFactory(username="someone")
    theirs = ConversationFactory(owner=someone, chat_model=chat_model)
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india"]
    Message.objects.bulk_create(
        Message(
            conversation=conversations[n % 30] if n % 2 else theirs,
            role=Role.USER,
            content=" ".join(words[(n + k) % len(words)] for k in range(12)) + f" n{n}",
        )
        for n in range(30_000)
    )
    MessageFactory(conversation=conversations[3], content="a rare xylophone")
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE conversations_message")
    plan = search.message_candidates(user, "xylophone").explain()
    assert "message_search_vector" in plan, plan
    assert [hit.title for hit in search.search_for_user(user, "xylophone")] == ["C3"]


def test_a_streaming_reply_is_found_once_it_settles(user, untitled):
    from conversations import services
    from conversations.models import MessageStatus

    (question,) = thread(untitled, "Tell me about sea mammals")
    reply = MessageFactory(
        conversation=untitled, parent=question, role=Role.ASSISTANT, status=MessageStatus.STREAMING
    )
    services.replies_save_partial(partials=[services.Partial(reply.id, "The narwhal", "")])
    assert search.search_for_user(user, "narwhal") == [], "a reply in flight is not indexed yet"

    outcome = services.CallOutcome(status=MessageStatus.COMPLETE, content="The narwhal dives.")
    assert services.reply_finish(reply_id=reply.id, outcome=outcome)
    assert found(user, "narwhal") == {("Notes", reply.uuid)}


def test_edited_text_is_searched_as_it_now_reads(user, untitled):
    (message,) = thread(untitled, "a walrus on the ice")
    message.content = "a seal on the ice"
    message.save()
    assert search.search_for_user(user, "walrus") == []
    assert found(user, "seal") == {("Notes", message.uuid)}


def test_partial_saves_of_a_streaming_reply_are_in_place_updates(user, untitled):
    """No indexed column changes while a reply streams, so Postgres rewrites the row on its
    own page without touching the table's ten indexes (a HOT update)."""
    from conversations import services
    from conversations.models import MessageStatus

    replies = [
        MessageFactory(
            conversation=ConversationFactory(owner=user, chat_model=untitled.chat_model),
            role=Role.ASSISTANT,
            status=MessageStatus.STREAMING,
        )
        for _ in range(3)
    ]

    def updates() -> tuple[int, int]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_stat_get_xact_tuples_updated(c.oid),"
                " pg_stat_get_xact_tuples_hot_updated(c.oid)"
                " FROM pg_class c WHERE c.relname = 'conversations_message'"
            )
            return cursor.fetchone()

    before = updates()
    text = ""
    for word in ["one", "two", "three", "four", "five"]:
        text += f"{word} "
        partials = [services.Partial(reply.id, text, "") for reply in replies]
        assert services.replies_save_partial(partials=partials) == 3
    after = updates()
    assert after[0] - before[0] == 15
    assert after[1] - before[1] == 15, "every partial save was a HOT update"
