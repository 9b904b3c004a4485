"""Context fidelity: long conversations through the real summary worker, as users chat.

On the embedded PostgreSQL, one daphne and one Celery worker (one thread, summaries and
recall's indexing sharing it as a small deployment would), a fake provider whose summary
calls take SUMMARY_SECONDS and whose usage is counted with Qwen's bundled tokenizer
(bench/context_provider.py). Conversations at 4K, 8K and 128K windows run TURNS turns each
at a human pace (PAUSE_SECONDS between a reply and the next message), switching between
English and Chinese every LANGUAGE_SPAN turns, all at once; one more 4K conversation sends
back to back. Per conversation: requests that dropped turns no summary covered, summary
calls per 100 turns, summary chains, the largest request against the window, and how far
the app's token counts were from the tokenizer's (a Qwen model counts with the bundled
tokenizer; a GLM model, which has none, with the calibrated estimate).

Run by `make bench` as `python -m bench.context_fidelity`; prints one JSON line.
"""

import asyncio
import json
import os
import random
import sys
import time
from pathlib import Path

from bench import load
from bench.procs import Proc, daphne, free_port

ROOT = Path(__file__).resolve().parent.parent
DATABASE = "chatsite_bench_context"
TURNS = 300
PAUSE_SECONDS = 1.0
SUMMARY_SECONDS = 0.5
LANGUAGE_SPAN = 50
if os.environ.get("BENCH_QUICK"):
    TURNS, LANGUAGE_SPAN = 40, 10
DRAIN_TIMEOUT = 120.0

# name, context window, reply room, pause between turns
CHATS = (
    ("qwen-bench-4k", 4_096, 1_024, PAUSE_SECONDS),
    ("qwen-bench-8k", 8_192, 2_048, PAUSE_SECONDS),
    ("qwen-bench-128k", 131_072, 8_192, PAUSE_SECONDS),
    ("glm-bench-8k", 8_192, 2_048, PAUSE_SECONDS),
    ("qwen-bench-4k-back-to-back", 4_096, 1_024, 0.0),
)

ENGLISH_QUESTION = (
    "Could you check the figures from the last deployment again, compare them with the "
    "invoice and tell me which calls were priced at the old rate and why it happened"
)
ENGLISH = ENGLISH_QUESTION.split()
CHINESE = list(
    "请再核对一下上次部署的数据，和账单比较，告诉我哪些调用还按旧价格计费，以及原因是什么"
)


def question(turn: int, rng: random.Random) -> str:
    """About 40 to 80 tokens, in the language of this stretch of the chat."""
    if (turn // LANGUAGE_SPAN) % 2:
        return f"第{turn}轮：" + "".join(rng.choices(CHINESE, k=rng.randint(40, 80)))
    return f"Turn {turn}: " + " ".join(rng.choices(ENGLISH, k=rng.randint(30, 60)))


def setup() -> list[dict]:
    """The database, one owner per chat and their models (Qwen's names take the bundled
    tokenizer, GLM's the estimate)."""
    from bench import recall

    recall.setup(DATABASE)
    from bench import data
    from conversations.models import ChatModel, Conversation

    chat_model = data.bench_chat_model()
    owners = data.users("bench-context", len(CHATS))
    chats = []
    for owner, (name, window, output, pause) in zip(owners, CHATS, strict=True):
        model = ChatModel.objects.create(
            provider=chat_model.provider, name=name, context_window=window, max_output=output
        )
        conversation = Conversation.objects.create(owner=owner, chat_model=model)
        chats.append(
            {
                "name": name,
                "uuid": str(conversation.uuid),
                "cookie": owner.session_key,
                "pause": pause,
            }
        )
    return chats


def start(logs: Path) -> dict[str, Proc]:
    env = dict(os.environ, CELERY_BROKER_URL=os.environ["REDIS_URL"], RECALL_ENABLED="true")
    provider_port = free_port()
    env["LOCAL_BASE_URL"] = f"http://127.0.0.1:{provider_port}/v1"
    provider_args = ["-m", "bench.context_provider", "--port", str(provider_port)]
    provider_args += ["--summary-seconds", str(SUMMARY_SECONDS)]
    worker_args = [
        *("-m", "celery", "-A", "chatsite", "worker", "--pool", "threads"),
        *("--concurrency", "1", "--loglevel", "INFO", "-n", "bench-context@%h"),
        *("--without-gossip", "--without-mingle", "--without-heartbeat"),
    ]
    procs = {
        "provider": Proc("context-provider", provider_args, env, logs, provider_port),
        "daphne": daphne("context-daphne", env, logs),
        "worker": Proc("context-worker", worker_args, env, logs, 0),
    }
    procs["provider"].wait_listening()
    procs["daphne"].wait_listening()
    procs["worker"].wait_for_log("ready.")
    return procs


async def converse(session, server: Proc, chat: dict) -> dict:
    """TURNS turns on one tab, each sent once the reply before it ended."""
    url = f"ws://127.0.0.1:{server.port}/ws/c/{chat['uuid']}/"
    headers = {"Origin": f"http://127.0.0.1:{server.port}", "Cookie": f"sessionid={chat['cookie']}"}
    tab = load.TabClient(session, url, headers)
    await tab.connect()
    rng = random.Random(chat["name"])
    failed, started = 0, time.monotonic()
    for turn in range(TURNS):
        key = f"context-{chat['name']}-{turn}"
        message = {"action": "send", "message": question(turn, rng), "idempotency_key": key}
        await tab.ws.send_str(json.dumps(message))
        status = await _reply_status(tab, expected_messages=2 * (turn + 1))
        failed += status != "complete"
        await asyncio.sleep(chat["pause"])
    await tab.close()
    return {"failed": failed, "seconds": time.monotonic() - started}


async def _reply_status(tab: load.TabClient, *, expected_messages: int) -> str:
    while True:
        frame = await asyncio.wait_for(tab.ws.receive(), timeout=60)
        tab.page.apply(frame.data)
        reply = tab.page.last()
        if len(tab.page.order) >= expected_messages and reply and reply.status in load.FINAL:
            return reply.status


def _jobs_waiting() -> int:
    import redis

    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    return sum(int(client.llen(queue)) for queue in ("celery", "context"))


async def drained() -> float:
    started = time.monotonic()
    while await asyncio.to_thread(_jobs_waiting) and time.monotonic() - started < DRAIN_TIMEOUT:
        await asyncio.sleep(0.5)
    return time.monotonic() - started


def figures(chat: dict) -> dict:
    """What the conversation's replies recorded about their requests."""
    from conversations.context import context_budget
    from conversations.models import (
        Conversation,
        ConversationSummary,
        Message,
        Role,
        UsageKind,
        UsageRecord,
    )
    from conversations.tokens import has_cjk

    conversation = Conversation.objects.select_related("chat_model").get(uuid=chat["uuid"])
    model = conversation.chat_model
    replies = list(
        Message.objects.filter(conversation=conversation, role=Role.ASSISTANT)
        .select_related("parent")
        .order_by("id")
    )
    with_drops = [r for r in replies if (r.context or {}).get("dropped_turns")]
    summaries = ConversationSummary.objects.filter(conversation=conversation)
    calls = UsageRecord.objects.filter(conversation=conversation, kind=UsageKind.SUMMARY)
    errors: dict[str, list[float]] = {"en": [], "zh": []}
    for reply in replies:
        counted = (reply.context or {}).get("estimated_tokens")
        if counted and reply.prompt_tokens:
            language = "zh" if reply.parent and has_cjk(reply.parent.content[:20]) else "en"
            errors[language].append((counted - reply.prompt_tokens) / reply.prompt_tokens)
    return {
        "window": model.context_window,
        "budget": context_budget(conversation),
        "tokenizer": (replies[-1].context or {}).get("tokenizer", "") if replies else "",
        "turns": len(replies),
        "requests_with_drops": len(with_drops),
        "turns_dropped": sum(r.context["dropped_turns"] for r in with_drops),
        "first_drop_at_turn": replies.index(with_drops[0]) + 1 if with_drops else None,
        "summaries": summaries.count(),
        "summary_chains": summaries.filter(previous__isnull=True).count(),
        "summary_calls": calls.count(),
        "summary_calls_per_100_turns": 100 * calls.count() / max(len(replies), 1),
        "largest_reported_prompt": max((r.prompt_tokens or 0 for r in replies), default=0),
        "prompt_room": model.context_window - model.max_output,
        "count_error": {k: _error_figures(v) for k, v in errors.items() if v},
    }


def _error_figures(errors: list[float]) -> dict:
    """Mean and mean size of the relative error, over the replies after the first ten (the
    calibration's start, and the tokenizer's load, are not what a chat lives with)."""
    settled = errors[10:] or errors
    return {
        "replies": len(settled),
        "mean": sum(settled) / len(settled),
        "mean_size": sum(abs(e) for e in settled) / len(settled),
        "worst": max(settled, key=abs),
    }


async def run(chats: list[dict], logs: Path) -> dict:
    procs = start(logs)
    session = load.new_session()
    try:
        runs = await asyncio.gather(*(converse(session, procs["daphne"], c) for c in chats))
        drain_seconds = await drained()
    finally:
        await session.close()
        for proc in procs.values():
            proc.stop()
    results = {}
    for chat, ran in zip(chats, runs, strict=True):
        results[chat["name"]] = ran | await asyncio.to_thread(figures, chat)
        results[chat["name"]]["pause_seconds"] = chat["pause"]
    return {"chats": results, "drain_seconds": drain_seconds}


def main() -> None:
    from bench.run import standalone_phase_env

    standalone_phase_env()
    logs = Path(os.environ.get("BENCH_LOGS", ROOT / "bench-results" / "logs"))
    logs.mkdir(parents=True, exist_ok=True)
    chats = setup()
    results = asyncio.run(run(chats, logs))
    results |= {"turns": TURNS, "summary_seconds": SUMMARY_SECONDS, "pause": PAUSE_SECONDS}
    print(json.dumps(results, default=str))


if __name__ == "__main__":
    sys.exit(main())
