"""The bench database and the measurements that run in-process: context, page, export data.

Everything here runs in the driver with Django set up against the bench database only.
"""

import random
import statistics
import time
from urllib.parse import urlparse, urlunparse

import psycopg

WORDS = ["the", "reply", "streams", "token", "by", "while", "the", "page", "keeps", "every"]
WORDS += ["word", "a", "reload", "picks", "up", "where", "the", "socket", "left", "off"]


def recreate_database(url: str) -> None:
    """Drop and create the bench database: every run starts from the same empty state."""
    parsed = urlparse(url)
    name = parsed.path.lstrip("/")
    if "bench" not in name:
        raise SystemExit(f"refusing to drop {name!r}: the bench database name must say 'bench'")
    admin = urlunparse(parsed._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def text(rng: random.Random, words: int = 40) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def bench_chat_model():
    from conversations.models import ChatModel, Provider

    provider = Provider.objects.get(slug="local")
    chat_model, _ = ChatModel.objects.get_or_create(provider=provider, name="fake-model")
    return chat_model


def setup_catalogue_and_user(username: str):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(username=username, password="bench-password")
    return bench_chat_model(), user


def users(prefix: str, count: int) -> list:
    """`count` users, each signed in (`session_key`): the load's streams come from many
    people, as in the product, where one account holds at most MAX_REPLIES_IN_FLIGHT."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password

    user_model = get_user_model()
    password = make_password("bench-password")  # hashing is slow by design: once for all
    rows = [user_model(username=f"{prefix}-{i}", password=password) for i in range(count)]
    made = user_model.objects.bulk_create(rows, batch_size=1000)
    for user in made:
        user.session_key = session_cookie(user)
    return made


def session_cookie(user) -> str:
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


def conversations(owners: list, chat_model) -> list[str]:
    """One conversation for each of `owners`, in their order."""
    from conversations.models import Conversation

    rows = [Conversation(owner=owner, chat_model=chat_model) for owner in owners]
    uuids = [str(c.uuid) for c in Conversation.objects.bulk_create(rows, batch_size=1000)]
    analyze()
    return uuids


def analyze() -> None:
    """Planner statistics for the rows just made, as autovacuum would gather them within a
    minute of a real database's growth. Without them Postgres planned the send's count of
    the owner's replies in flight as a loop over all 1,000 of the owner's conversations
    (2.4 ms per send instead of 1)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def thread(user, chat_model, length: int, *, pending_reply: bool = False, summaries: bool = False):
    """A conversation whose history is one chain of `length` finished messages.

    With `summaries`, it also has the rolling summaries chatsite would have made along the
    way (see rolling_summaries): a long conversation in the product always has one."""
    from django.db import connection

    from conversations.models import Conversation, Message, MessageStatus, Role

    conversation = Conversation.objects.create(
        owner=user, chat_model=chat_model, title=f"bench {length}"
    )
    total = length + int(pending_reply)
    with connection.cursor() as cursor:
        # Ids up front, so each row can name its parent in one bulk insert.
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence('conversations_message', 'id'))"
            " FROM generate_series(1, %s)",
            [total],
        )
        ids = [row[0] for row in cursor.fetchall()]
    rng = random.Random(length)
    rows, parent = [], None
    for i, pk in enumerate(ids):
        user_turn = i % 2 == 0
        pending = pending_reply and i == total - 1
        rows.append(
            Message(
                id=pk,
                conversation=conversation,
                parent_id=parent,
                role=Role.USER if user_turn else Role.ASSISTANT,
                content="" if pending else text(rng, 20 if user_turn else 60),
                status=MessageStatus.PENDING if pending else MessageStatus.COMPLETE,
                chat_model=None if user_turn else chat_model,
                model_name="" if user_turn else chat_model.name,
            )
        )
        parent = pk
    Message.objects.bulk_create(rows, batch_size=2000)
    if summaries:
        rolling_summaries(conversation, ids[:length], rng)
    return conversation, ids[-1]


def rolling_summaries(conversation, ids: list[int], rng: random.Random) -> None:
    """Summaries where chatsite's policy puts them on a linear chat: once the turns after
    the latest summary reach SUMMARY_TRIGGER_TURNS, the older SUMMARY_OLDER_SHARE of them
    (ending on a reply) is condensed. The newest summary ends 30 to 60 turns back."""
    from django.conf import settings

    from conversations.models import ConversationSummary

    trigger = settings.SUMMARY_TRIGGER_TURNS
    keep = trigger - int(trigger * settings.SUMMARY_OLDER_SHARE)
    summaries, covered = [], 0
    for end in range(trigger, len(ids) + 1):  # once message end-1 is in the thread
        if end - covered < trigger:
            continue
        through = end - keep - 1
        through -= through % 2 == 0  # end on a reply (odd positions are replies)
        summaries.append(
            ConversationSummary(
                conversation=conversation,
                text=text(rng, 300),
                covers_through_id=ids[through],
                token_count=400,
                model_name="fake-model",
            )
        )
        covered = through + 1
    ConversationSummary.objects.bulk_create(summaries, batch_size=2000)


def _timed(fn, repeat: int) -> dict:
    fn()  # warm: imports, template compilation, connection
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return {"median_ms": statistics.median(samples), "max_ms": max(samples), "runs": repeat}


def measure_context(user, chat_model, lengths=(10, 1_000, 10_000)) -> dict:
    """Building one request's context from histories of each length. Long histories have
    rolling summaries, as in the product; "10000-unsummarised" is the worst case (every
    summary failed), where the whole window of verbatim turns is read and estimated."""
    from conversations.context import context_for_reply
    from conversations.models import Message

    results = {}
    cases = [(length, True) for length in lengths] + [(lengths[-1], False)]
    for length, summarised in cases:
        _, reply_id = thread(user, chat_model, length, pending_reply=True, summaries=summarised)

        def build(reply_id=reply_id):
            reply = Message.objects.select_related("conversation__chat_model").get(pk=reply_id)
            return context_for_reply(reply)

        context = build()
        results[length if summarised else f"{length}-unsummarised"] = _timed(build, 15) | {
            "sent_messages": len(context.messages),
            "dropped_turns": context.dropped_turns,
            "summary": context.summary is not None,
        }
    return results


def measure_page(user, chat_model, length: int = 5_000) -> dict:
    from django.test import Client

    conversation, _ = thread(user, chat_model, length)
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    url = f"/c/{conversation.uuid}/"

    def get():
        response = client.get(url)
        assert response.status_code == 200, response.status_code

    return _timed(get, 20) | {"messages": length}
