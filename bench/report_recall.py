"""Recall's rows of the bench table: its own phase (bench/recall.py) and streaming with
recall on beside a worker (bench/recall_load.py)."""

from bench.report import ADDED_P99_LIMIT_MS, at_most, row


def rows(r: dict) -> list[dict]:
    found = []
    if "recall" in r:
        found += recall_rows(r["recall"])
    if "recall_load" in r:
        found += recall_load_rows(r["recall_load"])
    return found


def recall_rows(recall: dict) -> list[dict]:
    """Recall's phase (bench/recall.py): added context time, hit rates, embedder speed."""
    rows = []
    for length, c in recall["context"].items():
        added_ms = c["added_ms"]
        rows.append(
            row(
                f"Recall added to the context build, {int(length):,} messages",
                added_ms,
                "ms",
                "<= 15 ms",
                added_ms <= 15,
            )
        )
        rows.append(
            row(
                f"Recall query embedding, {int(length):,} messages",
                c["query_embedding_ms"],
                "ms",
                "",
                None,
            )
        )
    for language, h in recall["hit_rate"].items():
        for method in ("lexical", "vector"):
            rows.append(
                row(f"Recall hit rate, {language}, {method}", f"{h[method]:.0%}", "", "", None)
            )
        rows.append(
            row(
                f"Recall hit rate, {language}, hybrid",
                f"{h['hybrid']:.0%}",
                "",
                ">= 90%",
                h["hybrid"] >= 0.9,
            )
        )
        rows.append(
            row(f"Bundled embedder, {language}", h["chunks_per_second"], "chunks/s", "", None)
        )
    return rows


def recall_load_rows(r: dict) -> list[dict]:
    """Streaming with recall off, then on (a summary in every conversation, a worker
    indexing each finished turn): the README's streaming figures must hold with it on."""
    off, on = r["off"], r["on"]
    streams = r["streams"]
    found = []
    for name, key, limit in (
        ("Added TTFT p50, 1 stream", "added_ttft_p50_ms", 3),
        ("Added send -> first token p50, 1 stream", "added_send_ttft_p50_ms", None),
    ):
        found.append(
            row(f"Recall off: {name}", off["single"][key], "ms", "info", None),
        )
        target = f"<= {limit} ms" if limit else "info: includes the query's embedding"
        ok = at_most(on["single"], key, limit) if limit else None
        found.append(row(f"Recall on: {name}", on["single"][key], "ms", target, ok))
    for name, key in (
        ("Added send -> first token p50", "added_send_ttft_p50_ms"),
        ("Added delta latency p99", "added_delta_p99_ms"),
    ):
        target = f"< {ADDED_P99_LIMIT_MS} ms" if "delta" in key else "info"
        ok = at_most(on["load"], key, ADDED_P99_LIMIT_MS) if "delta" in key else None
        found.append(
            row(f"Recall off: {name}, {streams} streams", off["load"][key], "ms", "info", None)
        )
        found.append(
            row(f"Recall on: {name}, {streams} streams", on["load"][key], "ms", target, ok)
        )
    for mode, figures in (("off", off), ("on", on)):
        cores = figures["load"]["cpu_cores"]
        shown = ", ".join(f"{name} {value:.2f}" for name, value in sorted(cores.items()))
        found.append(row(f"Recall {mode}: CPU cores, {streams} streams", shown, "", "info", None))
    recalled = on.get("recalled", {})
    hybrid, total = recalled.get("hybrid", 0), sum(recalled.values())
    found.append(
        row(
            "Recall on: replies that recalled (hybrid)",
            f"{hybrid} of {total}",
            "",
            "all",
            total > 0 and hybrid == total,
        )
    )
    indexing = on.get("indexing", {})
    found.append(
        row(
            "Recall on: worker's backlog when the load stopped",
            f"{indexing.get('backlog_messages', 0)} messages, drained in "
            f"{indexing.get('drain_seconds', 0):.1f} s",
            "",
            "drained",
            indexing.get("left_after_timeout", 1) == 0,
        )
    )
    return found
