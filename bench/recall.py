"""Recall's bench phase, on the embedded PostgreSQL with pgvector (its own database there):

- context: building a request's context at 1,000 and 10,000 messages with recall and
  without; the added server time, with the query's embedding reported apart;
- hit rate: long chats, English and Chinese, with facts planted in their first turns and
  asked about 200+ turns later; how often the planted turn is among the excerpts recall
  chooses, for lexical, vector and hybrid ranking, with the bundled embedder;
- the embedder's throughput while it indexes those chats.

Run by `make bench` as `python -m bench.recall`; prints one JSON line.
"""

import json
import os
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "chatsite_bench_recall"
FILLER_TURNS = 220
# Context builds measured at each length, with recall and without.
SAMPLES = 25
EXCERPTS = 5

FACTS_EN = [
    ("My sister's name is Aurelia and she lives in Lisbon.", "What is my sister called?"),
    ("I parked the car on level four, spot 4B.", "Where did I leave the car?"),
    ("The wifi password at the cabin is maplesyrup77.", "What was the cabin's wifi password?"),
    ("My flight to Osaka leaves at 6:40 on Tuesday.", "When does my plane to Japan depart?"),
    ("I am allergic to peanuts and shellfish.", "Which foods must I avoid?"),
    (
        "Our team's budget for the offsite is 12,000 euros.",
        "How much money do we have for the offsite?",
    ),
    ("The dentist appointment is on the 3rd at 9 am.", "When am I seeing the dentist?"),
    ("I keep the spare house key under the blue flowerpot.", "Where is the spare key?"),
]
FACTS_ZH = [
    ("我妹妹叫林晓雨，住在成都。", "我妹妹叫什么名字？"),
    ("车停在地下二层的B区十七号。", "我的车停在哪里了？"),
    ("公司年会定在十二月二十日晚上。", "年会是哪天？"),
    ("我对花生和海鲜过敏。", "我不能吃哪些东西？"),
    ("新办公室的门禁密码是四七一一。", "办公室的门禁密码是多少？"),
    ("下周三要交季度财务报告。", "财务报告什么时候截止？"),
    ("备用钥匙放在蓝色花盆下面。", "备用钥匙在哪儿？"),
    ("我儿子的钢琴课在每周六上午十点。", "孩子的钢琴课是什么时间？"),
]
FILLER_EN = [
    "Let us talk about the weather today, it looks like rain later on.",
    "Can you suggest a good book about the history of science?",
    "I have been trying to learn to cook risotto this month.",
    "What do you think about electric bikes for commuting?",
    "Tell me a fun fact about octopuses.",
    "How do I keep basil alive on a windowsill?",
]
FILLER_ZH = [
    "今天天气不错，我们聊聊周末的计划吧。",
    "推荐一本关于科学史的好书吧。",
    "我最近在学做意大利烩饭。",
    "你觉得电动自行车适合通勤吗？",
    "讲一个关于章鱼的趣事。",
    "怎样让窗台上的罗勒活得更久？",
]


def setup(database: str = DATABASE) -> None:
    """The embedded server's bench database `database`, created afresh and migrated."""
    from chatsite import embedded_postgres

    os.environ.setdefault("EMBEDDED_POSTGRES_DIR", str(ROOT / "var" / "bench-postgres"))
    url = embedded_postgres.database_url(Path(os.environ["EMBEDDED_POSTGRES_DIR"]))
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database}"')
    host = psycopg.conninfo.conninfo_to_dict(url)["host"]
    os.environ["DATABASE_URL"] = f"postgres://postgres@{host.replace('/', '%2F')}/{database}"
    os.environ["RECALL_ENABLED"] = "true"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def synthetic_chunks(conversation_id: int, ids: list[int]) -> None:
    """One chunk per message with a random unit vector: the context build's cost does not
    depend on what the vectors mean, and embedding 10,000 messages would take minutes."""
    from conversations.models import Message
    from conversations.recall import store
    from conversations.recall.embedders import BUNDLED_NAME

    rng = random.Random(conversation_id)
    contents = dict(Message.objects.filter(pk__in=ids).values_list("id", "content"))
    for message_id in ids:
        if not contents.get(message_id):
            continue
        vector = [rng.gauss(0, 1) for _ in range(384)]
        norm = sum(v * v for v in vector) ** 0.5
        store.chunks_replace(
            message_id=message_id,
            conversation_id=conversation_id,
            texts=[contents[message_id]],
            vectors=[[v / norm for v in vector]],
            embedding_model=BUNDLED_NAME,
        )


def measure_context(user, chat_model, lengths=(1_000, 10_000)) -> dict:
    from django.conf import settings

    from bench import data
    from conversations.context import context_for_reply
    from conversations.models import Message

    results = {}
    for length in lengths:
        conversation, reply_id = data.thread(
            user, chat_model, length, pending_reply=True, summaries=True
        )
        ids = list(Message.objects.filter(conversation=conversation).values_list("id", flat=True))
        synthetic_chunks(conversation.pk, ids)
        data.analyze()

        def build(reply_id=reply_id):
            reply = Message.objects.select_related("conversation__chat_model").get(pk=reply_id)
            return context_for_reply(reply)

        # Interleaved, with and without recall in turn: the machine's load drifts (this
        # phase follows the streaming ones), and both halves of the difference share it.
        build()
        without, samples, embedding = [], [], []
        for _ in range(SAMPLES):
            settings.RECALL_ENABLED = False
            started = time.perf_counter()
            build()
            without.append((time.perf_counter() - started) * 1000)
            settings.RECALL_ENABLED = True
            started = time.perf_counter()
            context = build()
            elapsed = (time.perf_counter() - started) * 1000
            embedding.append(context.recall.get("embedding_ms") or 0)
            samples.append(elapsed - embedding[-1])
        results[length] = {
            "without_ms": statistics.median(without),
            "with_ms": statistics.median(samples),
            "added_ms": statistics.median(samples) - statistics.median(without),
            "query_embedding_ms": statistics.median(embedding),
            "recalled": len(context.recall.get("messages", [])),
        }
    return results


def _planted_chat(user, chat_model, facts, fillers):
    """Facts in the first turns, then FILLER_TURNS of small talk; indexed for real."""
    from bench import data
    from conversations import services
    from conversations.models import Conversation, Message, Role

    conversation = Conversation.objects.create(owner=user, chat_model=chat_model, title="recall")
    rng = random.Random(7)
    texts = []
    for fact, _ in facts:
        texts += [fact, "Noted."]
    for index in range(FILLER_TURNS):
        texts += [f"{rng.choice(fillers)} ({index})", data.text(rng, 30)]
    parent, ids = None, []
    for index, content in enumerate(texts):
        role = Role.USER if index % 2 == 0 else Role.ASSISTANT
        parent = Message.objects.create(
            conversation=conversation, role=role, content=content, parent=parent
        )
        ids.append(parent.id)
    started = time.perf_counter()
    chunks = services.messages_index(message_ids=ids)
    seconds = time.perf_counter() - started
    return conversation, ids, chunks / seconds


def measure_hit_rate(user, chat_model) -> dict:
    from conversations.recall import embedders, rankings
    from conversations.recall.ranking import fuse

    results: dict = {}
    for language, facts, fillers in (("en", FACTS_EN, FILLER_EN), ("zh", FACTS_ZH, FILLER_ZH)):
        conversation, ids, rate = _planted_chat(user, chat_model, facts, fillers)
        # The newest 40 messages are sent verbatim; the rest may be recalled.
        scope = rankings.Scope(conversation.pk, before_id=ids[-40])
        hits = {"lexical": 0, "vector": 0, "hybrid": 0}
        for position, (_, question) in enumerate(facts):
            planted = ids[2 * position]
            lexical = rankings.lexical(scope=scope, query=question, limit=20)
            vector = embedders.bundled().query(question, timeout=5).vectors[0]
            nearest = rankings.nearest(
                scope=scope, vector=vector, embedding_model=embedders.BUNDLED_NAME, limit=20
            )
            ranked = {
                "lexical": [c.message_id for c in lexical[:EXCERPTS]],
                "vector": [c.message_id for c in nearest[:EXCERPTS]],
                "hybrid": [r.message_id for r in fuse(nearest, lexical)[:EXCERPTS]],
            }
            for method, top in ranked.items():
                hits[method] += planted in top
        results[language] = {m: n / len(facts) for m, n in hits.items()} | {
            "chunks_per_second": rate,
            "facts": len(facts),
        }
    return results


def main() -> None:
    setup()
    from bench import data

    chat_model, user = data.setup_catalogue_and_user("bench-recall")
    results = {"context": measure_context(user, chat_model)}
    results["hit_rate"] = measure_hit_rate(user, chat_model)
    print(json.dumps(results, default=str))


if __name__ == "__main__":
    sys.exit(main())
