"""The live-Markdown rows of the bench table (bench/markdown_live.py): what rendering a
streaming reply's Markdown costs per token, against the web process's whole CPU per token."""

from bench.report import row

# The added CPU per token may be at most this share of the web process's CPU per token.
ADDED_SHARE_LIMIT = 0.10
# Tokens per fragment at the load level compared: 20 tokens/s with the fragment interval
# at its 0.1 s ceiling, as it is from 200 live replies per process.
FRAGMENT_AT_LOAD = "2"
LOAD_LEVEL = 500


def web_us_per_token(r: dict) -> tuple[int, float] | None:
    """The daphnes' CPU per token delivered at the load level (or the nearest below it)."""
    levels = {int(k): v for k, v in (r.get("chatsite") or {}).items()}
    below = [n for n in levels if n <= LOAD_LEVEL] or list(levels)
    if not below:
        return None
    level = max(below)
    s = levels[level]
    cores = sum(v for k, v in s.get("cpu_cores", {}).items() if k.startswith("daphne"))
    if not s.get("tokens_per_second"):
        return None
    return level, cores / s["tokens_per_second"] * 1e6


def rows(r: dict) -> list[dict]:
    if "markdown_live" not in r:
        return []
    replies = r["markdown_live"]["replies"]
    found = []
    web = web_us_per_token(r)
    if web is not None:
        found.append(
            row(f"Web process CPU per token, {web[0]} streams (2 daphne)", web[1], "µs", "", None)
        )
    stamps = replies["stamps"][FRAGMENT_AT_LOAD]
    added = stamps["live_us_per_token"] - stamps["escaped_us_per_token"]
    share = f" ({added / web[1]:.1%} of the web process's)" if web else ""
    found.append(
        row(
            f"Live Markdown, added CPU per token, the bench's replies, {FRAGMENT_AT_LOAD} tokens"
            " a fragment",
            f"{added:.1f} µs{share}",
            "",
            f"≤ {ADDED_SHARE_LIMIT:.0%} of the web process's",
            added <= ADDED_SHARE_LIMIT * web[1] if web else None,
        )
    )
    for name, label in (("mixed", "mixed Markdown"), ("paragraph", "one long paragraph")):
        by_size = replies[name]
        shown = " / ".join(f"{by_size[k]['live_us_per_token']:.0f}" for k in sorted(by_size))
        slowest = max(f["slowest_fragment_ms"] for f in by_size.values())
        found.append(
            row(
                f"Live Markdown CPU per token, {label} ({r['markdown_live']['tokens']:,} tokens),"
                f" {' / '.join(sorted(by_size))} tokens a fragment",
                f"{shown} µs (slowest fragment {slowest:.1f} ms)",
                "",
                "reported",
                None,
            )
        )
    return found
