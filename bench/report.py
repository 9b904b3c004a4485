"""Turning raw timings into figures, and figures into the table next to their targets."""

import math
import re
from pathlib import Path

# The stale-reply sweeper runs every STREAM_STALE_AFTER/2 seconds per process, whatever the
# number of replies: its query is shown apart from the reply's own statements.
SWEEPER = re.compile(r"heartbeat_at\" < .* IS NULL", re.S)
# A level holds while the added delta p99 stays under this (the target's own figure).
ADDED_P99_LIMIT_MS = 250


def quantile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def summarise(outcome) -> dict:
    start, stop = outcome.window
    measured = [
        r
        for r in outcome.replies
        if r.sent_at >= start and (r.ok or r.cut) and r.first_recv is not None
    ]
    ttft = [(r.first_recv - r.first_emit) * 1000 for r in measured]
    send_ttft = [(r.first_recv - r.sent_at) * 1000 for r in measured]
    deltas = [
        (received - emitted) * 1000
        for r in outcome.replies
        for emitted, received in r.tokens
        if start <= emitted <= stop
    ]
    return {
        "streams": outcome.streams,
        "replies_measured": len(measured),
        "failures": outcome.failures,
        "replies_total": len(outcome.replies),
        "ttft_p50_ms": quantile(ttft, 0.5),
        "ttft_p99_ms": quantile(ttft, 0.99),
        "send_ttft_p50_ms": quantile(send_ttft, 0.5),
        "send_ttft_p99_ms": quantile(send_ttft, 0.99),
        "delta_p50_ms": quantile(deltas, 0.5),
        "delta_p99_ms": quantile(deltas, 0.99),
        "delta_max_ms": max(deltas, default=math.nan),
        "tokens_per_second": len(deltas) / (stop - start) if stop > start else math.nan,
        "failed_examples": [
            f"{r.status or 'no final frame'}: {len(r.tokens)}/{r.expected} tokens"
            for r in outcome.replies
            if not (r.ok or r.cut)
        ][:5],
    }


def added(summary: dict, baseline: dict) -> dict:
    """Overhead over the bare provider measured at (about) the same load."""
    for name in ("ttft_p50", "ttft_p99", "send_ttft_p50", "send_ttft_p99", "delta_p99"):
        summary[f"added_{name}_ms"] = summary[f"{name}_ms"] - baseline[f"{name}_ms"]
    summary["baseline_streams"] = baseline["streams"]
    return summary


def nearest(by_level: dict, count: int) -> dict:
    return by_level[min(by_level, key=lambda level: abs(level - count))]


def holds(summary: dict, limit_ms: float) -> bool:
    """The level is held: added p99 under the limit, nothing failed, the full rate arrived."""
    expected = summary["streams"] * 20
    return (
        summary["added_delta_p99_ms"] < limit_ms
        and summary["failures"] <= summary["replies_total"] * 0.01
        and summary["tokens_per_second"] >= expected * 0.9
    )


def level_line(kind: str, s: dict) -> str:
    return (
        f"{kind:>8} x{s['streams']:<5} replies {s['replies_measured']:>4} (failed {s['failures']})"
        f"  ttft p50 {s['ttft_p50_ms']:7.2f} p99 {s['ttft_p99_ms']:7.2f}"
        f"  send->first p50 {s['send_ttft_p50_ms']:7.2f}"
        f"  delta p50 {s['delta_p50_ms']:7.2f} p99 {s['delta_p99_ms']:7.2f} ms"
        f"  {s['tokens_per_second']:7.0f} tok/s  cpu {s['cpu_cores']}"
    )


def statements(log: Path, result, tps: float) -> dict:
    """Statements in the server's log from the send until the final frame arrived."""
    end = (result.done_at or result.sent_at) + 0.2
    kinds: dict[str, int] = {}
    sweeper = commits = 0
    for line in log.read_text().splitlines():
        stamp, kind, sql = line.split("\t", 2)
        if not result.sent_at <= float(stamp) <= end:
            continue
        if kind != "sql":
            commits += 1
        elif SWEEPER.search(sql):
            sweeper += 1
        else:
            label = _label(sql)
            kinds[label] = kinds.get(label, 0) + 1
    streaming = result.tokens[-1][0] - result.tokens[0][0] if result.tokens else 0.0
    return {
        "reply_ok": result.ok,
        "tokens": len(result.tokens),
        "tokens_per_second": tps,
        "streaming_seconds": streaming,
        "statements": sum(kinds.values()),
        "by_kind": dict(sorted(kinds.items(), key=lambda kv: -kv[1])),
        "transactions_committed": commits,
        "sweeper_statements_excluded": sweeper,
        "method": (
            "psycopg Cursor.execute/executemany wrapped in the daphne process (bench/server.py):"
            " every SQL statement sent, Django's connection health checks included, from the"
            " send until the final frame; BEGIN/COMMIT pairs counted apart as transactions."
        ),
    }


def _label(sql: str) -> str:
    if sql.startswith("SELECT 1") and "FROM" not in sql:
        return "SELECT 1 (connection health check)"
    verb = sql.split(None, 1)[0].upper()
    table = re.search(r'(?:FROM|INTO|UPDATE) "([a-z_]+)"', sql)
    return f"{verb} {table.group(1) if table else ''}".strip()


# --- the table -----------------------------------------------------------------------------


def row(figure: str, value: float | str, unit: str, target: str, ok: bool | None) -> dict:
    verdict = "info" if ok is None else ("PASS" if ok else "MISS")
    shown = value if isinstance(value, str) else f"{value:,.2f} {unit}".strip()
    return {"figure": figure, "value": shown, "target": target, "verdict": verdict}


def _capacity(levels: dict) -> int:
    """The highest level held with every level below it held too."""
    capacity = 0
    for count in sorted(levels):
        if not holds(levels[count], ADDED_P99_LIMIT_MS):
            break
        capacity = count
    return capacity


# The lowest level a ramp reaches down to when its first level already misses.
LOWEST_LEVEL = 10


def level_below_first_miss(levels: dict) -> int | None:
    """When no level has held yet, half the lowest level tried (rounded to tens, at least
    LOWEST_LEVEL), so that a ramp always finds a level that holds: a floor of 0 would make
    every ratio against it meaningless. None once one held, or at the lowest level."""
    if not levels or _capacity(levels):
        return None
    lowest = min(levels)
    below = max(int(round(lowest / 2, -1)), LOWEST_LEVEL)
    return below if below < lowest else None


def halfway_to_first_miss(levels: dict) -> int | None:
    """The level halfway between the capacity and the first level missed above it, rounded
    to tens; None when no level above was missed or the two are too close to split."""
    capacity = _capacity(levels)
    first_missed = min((count for count in levels if count > capacity), default=None)
    if not capacity or first_missed is None:
        return None
    between = int(round((capacity + first_missed) / 2, -1))
    return between if capacity < between < first_missed and between not in levels else None


def table(r: dict) -> list[dict]:
    single = {k: added(v, r["single"]["direct"]) for k, v in r["single"].items()}
    one, cs = single["chatsite"], r["chatsite"]
    rows = [
        row(
            "Added TTFT p50, 1 stream",
            one["added_ttft_p50_ms"],
            "ms",
            "<= 3 ms",
            at_most(one, "added_ttft_p50_ms", 3),
        ),
        row(
            "Added TTFT p99, 1 stream",
            one["added_ttft_p99_ms"],
            "ms",
            "<= 15 ms",
            at_most(one, "added_ttft_p99_ms", 15),
        ),
    ]
    for n, target in ((100, 10), (500, None)):
        s = cs.get(n)
        if s is None:
            rows.append(row(f"Added TTFT p50, {n} streams", "not reached", "", "", False))
            continue
        goal = f"<= {target} ms" if target else ""
        ok = at_most(s, "added_ttft_p50_ms", target) if target else None
        rows.append(row(f"Added TTFT p50, {n} streams", s["added_ttft_p50_ms"], "ms", goal, ok))
        rows.append(row(f"Added TTFT p99, {n} streams", s["added_ttft_p99_ms"], "ms", "", None))
    rows.append(
        row(
            "Added send -> first token p50, 1 stream",
            one["added_send_ttft_p50_ms"],
            "ms",
            "info: whole path",
            None,
        )
    )
    for n, s in [(1, one), *[(n, cs[n]) for n in (100, 500) if n in cs]]:
        rows.append(
            row(
                f"Added delta latency p99, {n} stream(s)",
                s["added_delta_p99_ms"],
                "ms",
                f"< {ADDED_P99_LIMIT_MS} ms",
                at_most(s, "added_delta_p99_ms", ADDED_P99_LIMIT_MS),
            )
        )
    rows += capacity_rows(r)
    idle = r["idle"]["kb_per_socket"]
    rows.append(row("Memory per idle websocket", idle, "KB", "<= 50 KB", idle <= 50))
    st = r["statements"]
    allowed = 5 + math.ceil(st["streaming_seconds"])
    shown = f"{st['statements']} (+{st['transactions_committed']} commits)"
    ok = st["statements"] <= allowed and st["reply_ok"]
    rows.append(
        row(
            f"DB statements, 1,000-token reply, {st['streaming_seconds']:.1f} s",
            shown,
            "",
            f"<= {allowed}",
            ok,
        )
    )
    ctx = r["context"]
    rows += [
        row(f"Context build, {_history(n)}", c["median_ms"], "ms", "", None) for n, c in ctx.items()
    ]
    ratio = ctx[10_000]["median_ms"] / ctx[10]["median_ms"]
    rows.append(
        row("Context build, 10,000 vs 10 messages", f"{ratio:.1f}x", "", "<= 2x", ratio <= 2)
    )
    ex, page = r["export"], r["page"]["median_ms"]
    rate = ex["messages"] / ex["seconds"]
    rows += [
        row(
            "Export, 100,000 messages",
            rate,
            "msg/s",
            ">= 20,000 msg/s",
            rate >= 20_000 and ex["messages"] == 100_000,
        ),
        row(
            "Export peak memory (process VmHWM)",
            ex["peak_rss_mb"],
            "MB",
            "< 150 MB",
            ex["peak_rss_mb"] < 150,
        ),
        row("Page render, 5,000 messages (server time)", page, "ms", "< 200 ms", page < 200),
    ]
    return rows


def _history(key: int | str) -> str:
    if isinstance(key, int):
        return f"{key:,} messages (summarised as the product does)"
    length, _, how = str(key).partition("-")
    return f"{int(length):,} messages, {how} (every summary failed)"


def at_most(summary: dict, key: str, limit: float) -> bool:
    return summary[key] <= limit  # NaN (no samples) is never <=: a MISS


def _or_more(figure: int, levels: dict) -> str:
    """What to add to a capacity held at the top level tried: the load stopped there."""
    return " (top level tried: or more)" if figure == max(levels) else ""


def capacity_rows(r: dict) -> list[dict]:
    capacity, floor = _capacity(r["chatsite"]), _capacity(r["relay"])
    servers = r["servers"]
    # Held at the top level tried, a figure is only a lower bound: the relay's makes the
    # fraction an upper bound, which cannot be said to meet its aim.
    capacity_top, floor_top = _or_more(capacity, r["chatsite"]), _or_more(floor, r["relay"])
    fraction = capacity / floor if floor else 0.0
    shown = f"at most {fraction:.2f}" if floor_top else f"{fraction:.2f}"
    rows = [
        row(
            f"Concurrent streams at 20 tok/s, {servers} daphne, {r['load_tokens']}-token replies",
            f"{capacity:,} ({capacity // servers:,} per process){capacity_top}",
            "",
            ">= 500",
            capacity >= 500,
        ),
        row(f"Raw relay floor, {servers} processes", f"{floor:,}{floor_top}", "", "", None),
        row(
            "chatsite throughput / relay floor",
            shown,
            "",
            ">= 0.33",
            fraction >= 1 / 3 and not floor_top,
        ),
    ]
    if heavy := r.get("send_heavy"):
        held = _capacity(heavy)
        held_top = _or_more(held, heavy)
        rows.append(
            row(
                f"Concurrent streams, {r['send_heavy_tokens']}-token replies (a send every 4 s)",
                f"{held:,} ({held // servers:,} per process){held_top}",
                "",
                "info: send-heavy",
                None,
            )
        )
    return rows


def print_table(rows: list[dict]) -> None:
    widths = [max(len(row[k]) for row in rows) for k in ("figure", "value", "target")]
    print()
    for row in rows:
        print(
            f"{row['figure']:<{widths[0]}}  {row['value']:>{widths[1]}}  "
            f"{row['target']:<{widths[2]}}  {row['verdict']}"
        )
