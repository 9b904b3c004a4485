"""Streaming with recall on, as production runs it: a Celery worker beside the servers.

The main load phases run with recall off (RECALL_ENABLED=false), since without a broker
the web process itself would embed every finished turn. This phase measures what turning
recall on costs the stream: on the embedded PostgreSQL (pgvector), two daphne processes and
one Celery worker on the Redis broker, conversations long enough to have a summary (so
every send runs recall: the query's embedding, then the vector and word rankings over the
turns the summary covers), the same levels run twice, recall off and recall on, the
servers restarted between. The worker indexes every finished turn meanwhile; its backlog
when the load stops and the time it takes to drain are reported too.

Run by `make bench` as `python -m bench.recall_load`; prints one JSON line.
"""

import asyncio
import json
import os
import sys
import time
from pathlib import Path

from bench import load, report
from bench.levels import Levels
from bench.procs import Proc, daphne, free_port

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "chatsite_bench_recall_load"
STREAMS = 100
# Messages of history per conversation, the oldest 30 under a summary (as the product
# would have made it), so recall runs on every send; the 50 after it stay under the next
# summary's trigger for the whole run.
HISTORY_MESSAGES = 80
LOAD_TOKENS, LOAD_SECONDS = 240, 20.0
SINGLE_TOKENS, SINGLE_SECONDS = 4, 12.0
if os.environ.get("BENCH_QUICK"):
    STREAMS, LOAD_TOKENS, LOAD_SECONDS = 10, 80, 6.0
DRAIN_TIMEOUT = 120.0


def setup() -> tuple[list[str], list[str]]:
    """The database, the long conversations (chunked with synthetic vectors, as if indexed)
    and their owners' session cookies."""
    from bench import recall

    recall.setup(DATABASE)
    from bench import data

    chat_model = data.bench_chat_model()
    owners = data.users("bench-recall-load", STREAMS)
    conversations = []
    for owner in owners:
        conversation, _ = data.thread(owner, chat_model, HISTORY_MESSAGES, summaries=True)
        ids = list(conversation.messages.values_list("id", flat=True))
        recall.synthetic_chunks(conversation.id, ids)
        conversations.append(str(conversation.uuid))
    data.analyze()
    return conversations, [owner.session_key for owner in owners]


def start(logs: Path, *, recall_on: bool) -> dict[str, list[Proc]]:
    env = dict(os.environ, RECALL_ENABLED="true" if recall_on else "false")
    provider_port = free_port()
    env["LOCAL_BASE_URL"] = f"http://127.0.0.1:{provider_port}/v1"
    if recall_on:
        env["CELERY_BROKER_URL"] = env["REDIS_URL"]
    else:
        env.pop("CELERY_BROKER_URL", None)
    provider = Proc(
        "recall-provider",
        ["-m", "bench.provider", "--port", str(provider_port)],
        env,
        logs,
        provider_port,
        nice=10,
    )
    procs = {
        "provider": [provider],
        "daphne": [daphne(f"recall-daphne-{i}", env, logs) for i in range(2)],
    }
    if recall_on:
        worker_args = [
            *("-m", "celery", "-A", "chatsite", "worker", "--pool", "threads"),
            *("--concurrency", "1", "--loglevel", "INFO", "-n", "bench-recall@%h"),
            *("--without-gossip", "--without-mingle", "--without-heartbeat"),
        ]
        procs["worker"] = [Proc("recall-worker", worker_args, env, logs, 0)]
    for group in ("provider", "daphne"):
        for proc in procs[group]:
            proc.wait_listening()
    if recall_on:
        procs["worker"][0].wait_for_log("ready.")
    return procs


async def run_mode(conversations, cookies, logs: Path, *, recall_on: bool) -> dict:
    first_id = await asyncio.to_thread(_newest_message_id)
    procs = start(logs, recall_on=recall_on)
    session = load.new_session()
    levels = Levels(
        procs,
        session,
        provider_url=procs["provider"][0].url,
        conversations=conversations,
        cookies=cookies,
        tokens=LOAD_TOKENS,
        seconds=LOAD_SECONDS,
    )
    try:
        direct_one = await levels.level(
            "direct", 1, tokens=SINGLE_TOKENS, seconds=SINGLE_SECONDS, sequential=True
        )
        one = await levels.level(
            "chatsite",
            1,
            tokens=SINGLE_TOKENS,
            seconds=SINGLE_SECONDS,
            servers=procs["daphne"][:1],
            sequential=True,
        )
        direct_many = await levels.level("direct", STREAMS)
        many = await levels.level("chatsite", STREAMS)
        result = {
            "single": report.added(one, direct_one),
            "load": report.added(many, direct_many),
        }
        if recall_on:
            result["recalled"] = await asyncio.to_thread(_replies_by_recall_method, first_id)
            result["indexing"] = await _drained(after_id=first_id)
        return result
    finally:
        await session.close()
        for group in procs.values():
            for proc in group:
                proc.stop()


def _newest_message_id() -> int:
    from conversations.models import Message

    return Message.objects.order_by("-id").values_list("id", flat=True).first() or 0


def _replies_by_recall_method(after_id: int) -> dict[str, int]:
    """How the run's replies recalled: every one should say "hybrid"."""
    from django.db.models import Count

    from conversations.models import Message, Role

    rows = (
        Message.objects.filter(id__gt=after_id, role=Role.ASSISTANT, context__has_key="recall")
        .values("context__recall__method")
        .annotate(replies=Count("id"))
    )
    return {row["context__recall__method"] or "none": row["replies"] for row in rows}


async def _drained(*, after_id: int) -> dict:
    """The worker's backlog of this run's turns once the load stopped, and how long it
    took to index it."""
    from conversations.services import recall

    def backlog() -> int:
        return recall.messages_to_index().filter(id__gt=after_id).count()

    waiting = await asyncio.to_thread(backlog)
    started = time.monotonic()
    left = waiting
    while left and time.monotonic() - started < DRAIN_TIMEOUT:
        await asyncio.sleep(0.5)
        left = await asyncio.to_thread(backlog)
    return {
        "backlog_messages": waiting,
        "drain_seconds": time.monotonic() - started,
        "left_after_timeout": left,
    }


def main() -> None:
    from bench.run import standalone_phase_env

    standalone_phase_env()
    logs = Path(os.environ.get("BENCH_LOGS", ROOT / "bench-results" / "logs"))
    logs.mkdir(parents=True, exist_ok=True)
    conversations, cookies = setup()
    results = {"streams": STREAMS, "history_messages": HISTORY_MESSAGES}
    for mode, recall_on in (("off", False), ("on", True)):
        results[mode] = asyncio.run(run_mode(conversations, cookies, logs, recall_on=recall_on))
    print(json.dumps(results, default=str))


if __name__ == "__main__":
    sys.exit(main())
