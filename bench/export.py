"""Export throughput and peak memory, in a process of its own so its high-water mark is clean.

Uses the REST API's exporter (conversations/exports.py) when it exists; until then a JSONL
stream over `.iterator()`, the shape the API exporter is expected to have.
Prints one JSON object: messages, seconds, bytes, peak and sampled RSS, which exporter.
"""

import json
import os
import sys
import time


def rss_kb(field: str = "VmRSS") -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def fallback_lines(conversation):
    from conversations.models import Message

    fields = ("uuid", "parent__uuid", "role", "status", "content", "reasoning", "created_at")
    rows = Message.objects.filter(conversation=conversation).order_by("id").values_list(*fields)
    for row in rows.iterator(chunk_size=2000):
        record = dict(zip(fields, row, strict=True))
        record["parent"] = record.pop("parent__uuid")
        yield json.dumps(record, default=str, ensure_ascii=False) + "\n"


def exporter():
    """The project's exporter if it is there yet, else the fallback above."""
    try:
        from conversations import exports
    except ImportError:
        return fallback_lines, "bench fallback: JSONL over Message.objects...iterator(2000)"
    if callable(getattr(exports, "export_json", None)):
        return lambda c: exports.export_json([c]), "conversations.exports.export_json"
    return fallback_lines, "bench fallback (conversations.exports has no export_json)"


def main() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    django.setup()
    from conversations.models import Conversation

    conversation = Conversation.objects.get(uuid=sys.argv[1])
    export, name = exporter()
    baseline = rss_kb()
    samples, count, size, next_sample = [], 0, 0, 10_000
    started = time.perf_counter()
    for chunk in export(conversation):
        size += len(chunk)
        count += chunk.count("\n") if isinstance(chunk, str) else chunk.count(b"\n")
        if count >= next_sample:  # RSS every 10,000 messages: flat means constant memory
            samples.append(rss_kb())
            next_sample += 10_000
    seconds = time.perf_counter() - started
    result = {
        "exporter": name,
        "messages": count,
        "seconds": seconds,
        "bytes": size,
        "baseline_rss_mb": baseline / 1024,
        "peak_rss_mb": rss_kb("VmHWM") / 1024,
        "rss_samples_mb": [round(s / 1024, 1) for s in samples],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
