"""Import throughput and peak memory: a synthetic ChatGPT `conversations.json` of 100,000
messages (every fourth answer regenerated, so every conversation branches) written to disk,
then imported by the background import (services/imports/import_jobs.py: two streamed
passes, check then write) in a child process, so the peak RSS is the import's own.

Run alone: `python -m bench.imports [messages]` (the bench's database settings, as
bench.run gives them). Prints one JSON object: messages, seconds, messages per second, the
file's size, the child's peak RSS.
"""

import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

MESSAGES = 100_000
TURNS = 10  # question and answer pairs per conversation, on the branch on screen
REGENERATED_EVERY = 4  # every fourth answer has a second version (a branch point)
_WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "a",
    "lazy",
    "dog",
    "while",
    "seven",
    "wizards",
    "quietly",
    "hex",
    "and",
    "five",
    "boxing",
    "jets",
    "mix",
    "up",
    "a",
    "cold",
    "plaza",
    "of",
    "bright",
    "vivid",
    "words",
]


def _text(seed: int, words: int = 60) -> str:
    return " ".join(_WORDS[(seed * 7 + i * 3) % len(_WORDS)] for i in range(words))


def _node(node_id: str, parent: str | None, role: str | None, text: str, at: float) -> dict:
    message = None
    if role:
        message = {
            "id": node_id,
            "author": {"role": role, "name": None, "metadata": {}},
            "create_time": at,
            "update_time": None,
            "content": {"content_type": "text", "parts": [text]},
            "status": "finished_successfully",
            "end_turn": role == "assistant",
            "weight": 1.0,
            "metadata": {"model_slug": "gpt-4o"} if role == "assistant" else {},
            "recipient": "all",
        }
    return {"id": node_id, "message": message, "parent": parent, "children": []}


def chatgpt_conversation(number: int, turns: int = TURNS) -> tuple[dict, int]:
    """One conversation as ChatGPT exports it (a root placeholder, then `turns` exchanges,
    every REGENERATED_EVERY-th answer with a second version), and its message count."""
    mapping: dict[str, dict] = {}
    started = 1_700_000_000.0 + number * 3600

    def add(parent: str | None, role: str | None, text: str, at: float) -> str:
        node_id = str(uuid.UUID(int=(number << 32) + len(mapping)))
        mapping[node_id] = _node(node_id, parent, role, text, at)
        if parent:
            mapping[parent]["children"].append(node_id)
        return node_id

    leaf = add(None, None, "", started)
    messages = 0
    for turn in range(turns):
        at = started + turn * 60
        question = add(leaf, "user", _text(number + turn, 20), at)
        if turn % REGENERATED_EVERY == REGENERATED_EVERY - 1:
            add(question, "assistant", _text(number + turn + 1), at + 20)
            messages += 1
        leaf = add(question, "assistant", _text(number + turn + 2), at + 30)
        messages += 2
    conversation = {
        "title": f"Bench conversation {number}",
        "create_time": started,
        "update_time": started + turns * 60,
        "mapping": mapping,
        "current_node": leaf,
        "conversation_id": str(uuid.UUID(int=number + 1)),
        "id": str(uuid.UUID(int=number + 1)),
        "default_model_slug": "gpt-4o",
        "is_archived": False,
    }
    return conversation, messages


def chatgpt_export(path: Path, messages: int = MESSAGES, turns: int = TURNS) -> dict:
    """Write conversations.json with at least `messages` messages, one conversation at a
    time (flat memory); its conversations, messages and bytes."""
    written = conversations = 0
    with open(path, "w", encoding="utf-8") as file:
        file.write("[")
        while written < messages:
            conversation, count = chatgpt_conversation(conversations, turns)
            file.write(("," if conversations else "") + json.dumps(conversation))
            written, conversations = written + count, conversations + 1
        file.write("]")
    return {"conversations": conversations, "messages": written, "bytes": path.stat().st_size}


def _peak_rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _cpu_seconds(pid: int | None = None) -> float:
    """User and system CPU time of this process, or of process `pid` (the database's backend
    serving us, on this machine): the work done, whatever else runs on the cores."""
    if pid is None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:  # the database runs elsewhere
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _backend_pid() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


_OWNED = "SELECT id FROM conversations_conversation WHERE owner_id = %s"
_OWNED_MESSAGES = f"SELECT id FROM conversations_message WHERE conversation_id IN ({_OWNED})"
# The imported rows, those that point at others first.
_DROPS = (
    "UPDATE conversations_conversation SET current_leaf_id = NULL WHERE owner_id = %s",
    f"DELETE FROM conversations_attachment WHERE message_id IN ({_OWNED_MESSAGES})",
    f"DELETE FROM conversations_conversationsummary WHERE conversation_id IN ({_OWNED})",
    f"DELETE FROM conversations_importedconversation WHERE conversation_id IN ({_OWNED})",
    f"DELETE FROM conversations_message WHERE conversation_id IN ({_OWNED})",
    "DELETE FROM conversations_conversation WHERE owner_id = %s",
)


def _drop_rows(user) -> None:
    """The imported rows removed by a few statements (the ORM's cascade would load every
    message first, and take longer than the import)."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        for statement in _DROPS:
            cursor.execute(statement, [user.pk])
    user.delete()


def run_import(path: Path) -> None:
    """The child: import the file as a background job does, in this process; print its
    figures."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    django.setup()
    from django.contrib.auth.models import User

    from conversations.models import ImportJob
    from conversations.services.imports.import_jobs import import_job_run

    user = User.objects.create_user(f"bench-import-{uuid.uuid4().hex[:8]}")
    job = ImportJob.objects.create(
        owner=user, file_name=path.name, file_path=str(path), file_size=path.stat().st_size
    )
    baseline = _peak_rss_mb()
    backend = _backend_pid()
    cpu, db_cpu = _cpu_seconds(), _cpu_seconds(backend)
    started = time.perf_counter()
    job = import_job_run(import_job_id=job.pk)
    seconds = time.perf_counter() - started
    cpu, db_cpu = _cpu_seconds() - cpu, _cpu_seconds(backend) - db_cpu
    assert job is not None and job.status == "done", job and job.error
    figures = {
        "conversations": job.conversations_done,
        "messages": job.messages_done,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "database_cpu_seconds": db_cpu,
        "baseline_rss_mb": baseline,
        "peak_rss_mb": _peak_rss_mb(),
    }
    _drop_rows(user)  # the bench database keeps no imported rows
    print(json.dumps(figures))


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        run_import(Path(sys.argv[2]))
        return
    messages = int(sys.argv[1]) if len(sys.argv) > 1 else MESSAGES
    with tempfile.TemporaryDirectory(prefix="chatsite-bench-import-") as directory:
        path = Path(directory) / "conversations.json"
        made = chatgpt_export(path, messages)
        # The import only: recall's indexing of what it wrote is another phase's business.
        env = {**os.environ, "RECALL_ENABLED": "false"}
        child = subprocess.run(
            [sys.executable, "-m", "bench.imports", "--child", str(path)],
            check=True,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
    figures = json.loads(child.stdout.strip().splitlines()[-1])
    children_peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result = {
        **figures,
        "file_bytes": made["bytes"],
        "messages_per_second": figures["messages"] / figures["seconds"],
        "child_max_rss_mb": children_peak_mb,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
