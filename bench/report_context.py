"""The context-fidelity rows of the bench table (bench/context_fidelity.py): turns dropped
that no summary covered, summary calls, the largest request and the token counts' error."""

from bench.report import row

# The window's safety margin (context.CONTEXT_SAFETY_MARGIN) has to absorb the counts'
# error: a mean error within it keeps every request inside the window.
COUNT_ERROR_LIMIT = 0.10


def rows(r: dict) -> list[dict]:
    if "context_fidelity" not in r:
        return []
    phase = r["context_fidelity"]
    found = []
    for name, chat in phase["chats"].items():
        found += chat_rows(name, chat, turns=phase["turns"])
    return found


def chat_rows(name: str, c: dict, *, turns: int) -> list[dict]:
    window = f"{c['window'] // 1024}K"
    paced = c["pause_seconds"] > 0
    how = "human pace" if paced else "back to back"
    label = f"{window} window, {how} ({name})"
    drops = c["requests_with_drops"]
    found = [
        row(
            f"Requests with unsummarised drops, {label}",
            f"{drops} of {c['turns']}",
            "",
            "0" if paced else "",
            (drops == 0 and c["turns"] == turns) if paced else None,
        ),
        row(
            f"Summary calls per 100 turns, {label}", c["summary_calls_per_100_turns"], "", "", None
        ),
        row(
            f"Summary chains, {label}",
            f"{c['summary_chains']}",
            "",
            "<= 1",
            c["summary_chains"] <= 1,
        ),
        row(
            f"Largest prompt (tokenizer's count) vs room, {label}",
            f"{c['largest_reported_prompt']:,} of {c['prompt_room']:,}",
            "",
            "<= room",
            c["largest_reported_prompt"] <= c["prompt_room"],
        ),
    ]
    counter = c["tokenizer"] or "estimate"
    for language, e in c["count_error"].items():
        found.append(
            row(
                f"Token count error vs the bundled tokenizer, {language}, {counter}, {label}",
                f"{e['mean']:+.1%} (mean size {e['mean_size']:.1%})",
                "",
                f"within ±{COUNT_ERROR_LIMIT:.0%}",
                abs(e["mean"]) <= COUNT_ERROR_LIMIT,
            )
        )
    return found
