"""Recall's index: chunks of finished messages with their vectors, and the two rankings
over them (nearest vectors, lexical matches), on the embedded PostgreSQL with pgvector.

The same store tests run once more on a PostgreSQL without the vector extension (the
machine's PostgreSQL 15), where recall is lexical: test_the_store_falls_back_to_words_alone.
"""

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection

from chatsite import cpu, embedded_postgres
from conversations import services
from conversations.errors import ProviderUnavailable
from conversations.models import (
    Conversation,
    Message,
    MessageChunk,
    MessageStatus,
    UsageKind,
    UsageRecord,
)
from conversations.recall import rankings, store
from conversations.recall.chunks import split_into_chunks
from conversations.recall.embedders import BUNDLED_DIMENSIONS, BUNDLED_NAME, bundled
from conversations.tokens import estimate_tokens
from tests.factories import (
    ChatModelFactory,
    ConversationFactory,
    MessageFactory,
    UserFactory,
    thread,
)
from tests.markers import WITHOUT_PGVECTOR, WITHOUT_VECTORS, vectors_only

ROOT = Path(__file__).resolve().parent.parent

FACTS = [
    "我的猫叫小花，是一只三岁的橘猫。",
    "Yesterday I repaired the bicycle's rear brake with a new cable.",
    "我们公司用Python写数据管道，每天凌晨两点运行。",
    "The quarterly report is due on the fourteenth of March.",
    "周末我打算去杭州西湖看荷花。",
]


# --- Chunks ------------------------------------------------------------------------


def test_a_short_message_is_one_chunk():
    assert split_into_chunks("  Hello there.  ") == ["Hello there."]
    assert split_into_chunks("   ") == []


def test_a_long_message_is_cut_at_sentences_with_overlap():
    text = " ".join(f"Sentence {i} is about topic {i % 7}." for i in range(200))
    chunks = split_into_chunks(text, max_tokens=120, overlap_tokens=30)
    assert len(chunks) > 5
    assert all(estimate_tokens(chunk) <= 120 for chunk in chunks)
    for before, after in zip(chunks, chunks[1:], strict=False):
        last_sentence = before.rsplit(". ", 1)[-1]
        assert last_sentence in after, "the next chunk repeats the end of the one before"
        assert not after.startswith(before[:40]), "and moves on"
    assert "Sentence 0 is" in chunks[0] and "Sentence 199 is" in chunks[-1]


def test_chinese_and_unbroken_text_are_cut_within_the_limit():
    chinese = "。".join(f"第{i}句话讲的是主题{i % 5}" for i in range(300)) + "。"
    assert all(estimate_tokens(c) <= 320 for c in split_into_chunks(chinese))
    unbroken = "x" * 5000
    chunks = split_into_chunks(unbroken)
    assert len(chunks) >= 4 and all(estimate_tokens(c) <= 320 for c in chunks)


# --- Indexing ------------------------------------------------------------------------


class BrokenEmbedder:
    name = "broken/embedder"
    dimensions = 8

    def passages(self, texts):
        raise ProviderUnavailable()

    def query(self, text, *, timeout):
        raise ProviderUnavailable()


@vectors_only
@pytest.mark.django_db
def test_a_finished_message_gets_chunks_with_bundled_vectors(conversation):
    (message,) = thread(conversation, FACTS[0])
    assert services.message_index(message_id=message.id) == 1
    chunk = MessageChunk.objects.get(message=message)
    assert (chunk.embedding_model, chunk.dimensions) == (BUNDLED_NAME, BUNDLED_DIMENSIONS)
    assert chunk.text == FACTS[0] and chunk.conversation_id == conversation.id


@pytest.mark.django_db
def test_indexing_again_replaces_the_chunks_never_adds_more(conversation):
    # Two chunks: more than one, and no more (a chunk takes the bundled embedder seconds).
    (message,) = thread(conversation, " ".join(f"Point {i} of the plan." for i in range(60)))
    first = services.message_index(message_id=message.id)
    before = set(MessageChunk.objects.filter(message=message).values_list("id", flat=True))
    assert first > 1 and services.message_index(message_id=message.id) == first
    after = set(MessageChunk.objects.filter(message=message).values_list("id", flat=True))
    assert len(after) == first and not before & after


@pytest.mark.django_db
def test_streaming_empty_and_missing_messages_are_not_indexed(conversation):
    streaming = MessageFactory(conversation=conversation, role="assistant", status="streaming")
    empty = MessageFactory(conversation=conversation, content="  ")
    assert services.message_index(message_id=streaming.id) == 0
    assert services.message_index(message_id=empty.id) == 0
    assert services.message_index(message_id=10**12) == 0
    assert not MessageChunk.objects.exists()


@vectors_only
@pytest.mark.django_db
def test_an_embedder_failure_writes_nothing_and_leaves_the_message_alone(conversation):
    (message,) = thread(conversation, FACTS[1])
    with pytest.raises(ProviderUnavailable):
        services.message_index(message_id=message.id, embedder=BrokenEmbedder())
    message.refresh_from_db()
    assert message.content == FACTS[1] and message.status == MessageStatus.COMPLETE
    assert not MessageChunk.objects.exists()


# --- Rankings ------------------------------------------------------------------------


def _scope(conversation, facts):
    return rankings.Scope(conversation.id, before_id=facts[-1].id + 1)


class TestFiveIndexedFacts:
    """A conversation whose five user turns each state one fact, indexed once for the
    class: its tests read it, and what one of them changes is rolled back after it (see
    class_db in conftest.py). The module's other tests never see it."""

    @pytest.fixture(scope="class")
    @classmethod
    def _indexed_facts(cls, class_db):
        with class_db.writing():
            owner = UserFactory(username="alice")  # the `user` fixture's account
            conversation = ConversationFactory(owner=owner, chat_model=ChatModelFactory())
            messages = thread(conversation, *[m for fact in FACTS for m in (fact, "Noted.")])
            for message in messages:
                services.message_index(message_id=message.id)
            return conversation.pk, [m.pk for m in messages]

    @pytest.fixture
    def conversation(self, _indexed_facts, user, chat_model):
        conversation = Conversation.objects.get(pk=_indexed_facts[0])
        assert conversation.owner == user and conversation.chat_model == chat_model
        return conversation

    @pytest.fixture
    def facts(self, _indexed_facts, conversation):
        found = Message.objects.in_bulk(_indexed_facts[1])
        return [found[pk] for pk in _indexed_facts[1]]

    @pytest.mark.django_db
    def test_deleting_a_conversation_deletes_its_chunks(self, facts, conversation):
        assert MessageChunk.objects.filter(conversation=conversation).count() == len(facts)
        Conversation.objects.filter(pk=conversation.pk).delete()
        assert not MessageChunk.objects.exists()

    @vectors_only
    @pytest.mark.django_db
    @pytest.mark.parametrize(
        ("query", "fact"),
        [
            ("我的猫叫什么名字？", 0),
            ("What is my cat called?", 0),
            ("When do we have to hand in the report?", 3),
            ("周末去哪里玩？", 4),
        ],
    )
    def test_the_nearest_chunk_is_the_fact_asked_about(self, facts, conversation, query, fact):
        vector = bundled().query(query, timeout=5).vectors[0]
        best = rankings.nearest(
            scope=_scope(conversation, facts), vector=vector, embedding_model=BUNDLED_NAME, limit=3
        )
        assert best[0].message_id == facts[2 * fact].id
        assert best[0].score >= best[-1].score

    @pytest.mark.django_db
    @pytest.mark.parametrize(
        ("query", "fact"),
        [
            ("which cable fixed the brake", 1),
            ("Python", 2),  # a Latin word inside Chinese text: pg_trgm finds it
            ("小花", 0),
        ],
    )
    def test_the_lexical_ranking_finds_words_and_runs_of_characters(
        self, facts, conversation, query, fact
    ):
        best = rankings.lexical(scope=_scope(conversation, facts), query=query, limit=3)
        assert best and best[0].message_id == facts[2 * fact].id

    @pytest.mark.django_db
    @pytest.mark.parametrize("query", ["?", "…!", " "])
    def test_a_query_without_letters_compares_no_characters(self, facts, conversation, query):
        """pg_trgm finds no trigram in it and would compare it with every chunk (1.9 s at
        10,000 chunks): no trigram query is sent."""
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as sent:
            found = rankings.lexical(scope=_scope(conversation, facts), query=query, limit=3)
        assert found == []
        assert not any("word_similarity" in q["sql"] for q in sent.captured_queries)

    @pytest.mark.django_db
    def test_rankings_only_see_the_messages_they_are_given(self, facts, conversation):
        others = [m.id for m in facts if m.id != facts[2].id]
        scope = rankings.Scope(
            conversation.id, before_id=facts[-1].id + 1, message_ids=tuple(others)
        )
        found = rankings.lexical(scope=scope, query="Python", limit=5)
        assert facts[2].id not in {c.message_id for c in found}
        older = rankings.Scope(conversation.id, before_id=facts[2].id)
        found = rankings.lexical(scope=older, query="Python", limit=5)
        assert facts[2].id not in {c.message_id for c in found}, "nor messages after `before_id`"

    @pytest.mark.skipif(WITHOUT_PGVECTOR, reason="there the database itself lacks pgvector")
    @pytest.mark.django_db
    def test_on_a_cpu_the_embedded_pgvector_cannot_run_on_recall_keeps_to_words(
        self, facts, conversation, settings, monkeypatch
    ):
        """pgvector's code would kill the server's backend there (SIGILL): no vector is
        written or compared, and the words still find the fact."""
        settings.DATABASE_IS_EMBEDDED = True
        monkeypatch.setattr(embedded_postgres, "missing_cpu_flags", lambda: ("avx2",))
        assert not store.vectors_available()
        assert "this CPU lacks (avx2)" in store.vectors_unavailable_reason()
        services.message_index(message_id=facts[6].id)
        chunk = MessageChunk.objects.get(message=facts[6])
        assert (chunk.embedding_model, chunk.dimensions) == ("", None)
        best = rankings.lexical(
            scope=_scope(conversation, facts), query="quarterly report", limit=3
        )
        assert best and best[0].message_id == facts[6].id


@pytest.mark.django_db
def test_chunk_rows_keep_their_vectors_inline():
    """Ranking reads every candidate's vector: from the TOAST table it took three times as
    long (migration 0010)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT reloptions FROM pg_class WHERE relname = %s", [store.CHUNK])
        assert "toast_tuple_target=4080" in cursor.fetchone()[0]
        cursor.execute(
            "SELECT attstorage FROM pg_attribute WHERE attrelid = %s::regclass"
            " AND attname = 'embedding'",
            [store.CHUNK],
        )
        storage = cursor.fetchone()
    assert storage == (None if WITHOUT_PGVECTOR else ("m",)), "MAIN: out of line last"


@vectors_only
@pytest.mark.django_db
def test_a_thing_said_many_times_does_not_crowd_out_the_answer(conversation):
    """Thirty near-copies of one question sit closer to the query than the turn that
    answers it: the nearest ranks take one or two of them, then the answer."""
    allergy = "I am allergic to peanuts and shellfish."
    messages = thread(conversation, allergy, "Noted.")
    for day in range(30):
        messages += thread(conversation, f"How do I keep basil alive on a windowsill? ({day})")
    services.messages_index(message_ids=[m.id for m in messages])  # one batch
    vector = bundled().query("Which foods must I avoid?", timeout=5).vectors[0]
    scope = rankings.Scope(conversation.id, before_id=messages[-1].id + 1)
    # As deep as recall asks (RANKING_DEPTH); the first five are what counts here.
    best = rankings.nearest(scope=scope, vector=vector, embedding_model=BUNDLED_NAME, limit=20)
    texts = [MessageChunk.objects.get(pk=c.chunk_id).text for c in best[:5]]
    assert allergy in texts
    assert sum("basil" in text for text in texts) <= 3


def test_the_store_falls_back_to_words_alone():
    """The tests above, once more on this machine's PostgreSQL 15, which has pg_trgm but
    no pgvector: the migration leaves the vectors out and the lexical half still works."""
    if WITHOUT_PGVECTOR:
        pytest.skip("this is the run on the database without pgvector")
    # A name of its own: its test database (test_recall_fallback) clashes with no other run.
    default = "postgres://postgres@127.0.0.1:5432/recall_fallback"
    url = os.environ.get("NO_VECTOR_DATABASE_URL", default)
    # Without the plugins these tests do not use: pytest rewrites the asserts of every
    # module of a plugin package at start-up, anew each run where no bytecode is written
    # (PYTHONDONTWRITEBYTECODE), about 10 s for these four.
    unused_plugins = ["schemathesis", "hypothesispytest", "faker", "anyio"]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:randomly",
            *(f"-pno:{name}" for name in unused_plugins),
            __file__,
            "-k",
            "not falls_back",
        ],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url, "RECALL_TEST_WITHOUT_VECTORS": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "skipped" in result.stdout, "the vector tests were skipped there"


@pytest.mark.skipif(WITHOUT_PGVECTOR, reason="there the database itself lacks pgvector")
@pytest.mark.django_db
def test_on_a_cpu_the_bundled_embedder_cannot_run_on_nothing_is_embedded(
    conversation, settings, monkeypatch
):
    """Its engine would kill this very process (SIGILL): it is never loaded, even with a
    database elsewhere that has pgvector."""
    settings.DATABASE_IS_EMBEDDED = False
    monkeypatch.setattr(cpu, "flags", lambda: frozenset({"sse2", "avx"}))
    monkeypatch.setattr(bundled(), "passages", None)  # called, it would fail the test
    assert (
        store.vectors_unavailable_reason()
    ) == "the bundled embedder needs instructions this CPU lacks (avx2, fma)"
    (message,) = thread(conversation, FACTS[1])
    assert services.message_index(message_id=message.id) == 1
    assert MessageChunk.objects.get(message=message).embedding_model == ""


@pytest.mark.django_db
def test_this_database_says_which_recall_mode_it_is_in():
    assert store.vectors_available() is not WITHOUT_VECTORS
    assert store.trigrams_available()
    with connection.cursor() as cursor:
        cursor.execute("SELECT extname FROM pg_extension")
        extensions = {row[0] for row in cursor.fetchall()}
    assert ("vector" in extensions) is not WITHOUT_PGVECTOR


# --- A provider's embedder ------------------------------------------------------------


@pytest.fixture
def dashscope_embedder(settings, fake_provider_server):
    """EMBEDDING_MODEL=dashscope/text-embedding-v4, answered by the fake provider."""
    settings.PROVIDER_CREDENTIALS = {
        **settings.PROVIDER_CREDENTIALS,
        "dashscope": {"api_key": "sk-test", "base_url": fake_provider_server.base_url},
    }
    settings.EMBEDDING_MODEL = "dashscope/text-embedding-v4"
    return settings


@vectors_only
@pytest.mark.django_db
def test_a_provider_embedder_indexes_and_bills_the_owner(
    conversation, fake_provider, dashscope_embedder
):
    messages = thread(conversation, *FACTS)
    assert services.messages_index(message_ids=[m.id for m in messages]) == len(FACTS)
    chunk = MessageChunk.objects.filter(conversation=conversation).first()
    assert (chunk.embedding_model, chunk.dimensions) == ("dashscope/text-embedding-v4", 1024)
    assert len(fake_provider.embedding_requests) == 1, "one batch of five, within ten a call"
    (record,) = UsageRecord.objects.filter(kind=UsageKind.EMBEDDING)
    assert record.user_id == conversation.owner_id and record.conversation_id == conversation.id
    assert record.prompt_tokens > 0 and record.currency == "CNY"
    assert record.cost == Decimal(record.prompt_tokens) * Decimal("0.5") / Decimal(1_000_000)


@vectors_only
@pytest.mark.django_db
def test_a_recall_query_through_a_provider_is_billed(
    user, fake_provider, dashscope_embedder, recall_on
):
    from conversations.context import context_for_reply
    from tests.factories import long_chat_with_fact, pending_reply_to

    conversation, messages = long_chat_with_fact(user, turns=120)
    UsageRecord.objects.all().delete()
    context = context_for_reply(pending_reply_to(conversation, messages[-1]))
    assert context.recall["method"] == "hybrid" and context.recall["embedding_tokens"] > 0
    services.recall_query_usage_record(conversation=conversation, recalled=context.recall)
    (record,) = UsageRecord.objects.filter(kind=UsageKind.EMBEDDING)
    assert record.prompt_tokens == context.recall["embedding_tokens"]


@pytest.mark.django_db
def test_the_bundled_embedder_bills_nothing(conversation):
    messages = thread(conversation, *FACTS)
    services.messages_index(message_ids=[m.id for m in messages])
    assert not UsageRecord.objects.exists()
