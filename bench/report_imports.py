"""The import rows of the bench table (bench/imports.py): throughput and peak memory of a
100,000-message ChatGPT export through the background import, against the issue's targets,
and the CPU both sides spent (a figure that holds on a machine other work shares)."""

from bench.report import row

MESSAGES = 100_000
RATE_TARGET = 5_000  # messages per second
PEAK_LIMIT_MB = 200


def rows(r: dict) -> list[dict]:
    if "import" not in r:
        return []
    phase = r["import"]
    rate, peak = phase["messages_per_second"], phase["peak_rss_mb"]
    whole = phase["messages"] >= MESSAGES
    found = [
        row(
            f"Import, {MESSAGES:,}-message ChatGPT export",
            rate,
            "msg/s",
            f">= {RATE_TARGET:,} msg/s",
            rate >= RATE_TARGET and whole,
        ),
        row(
            "Import peak memory (process VmHWM)",
            peak,
            "MB",
            f"< {PEAK_LIMIT_MB} MB",
            peak < PEAK_LIMIT_MB,
        ),
    ]
    if "cpu_seconds" in phase:
        per_thousand = 1000 / phase["messages"]
        found.append(
            row(
                "Import CPU per 1,000 messages (importer + database)",
                f"{phase['cpu_seconds'] * per_thousand:.3f} + "
                f"{phase['database_cpu_seconds'] * per_thousand:.3f} s",
                "",
                "info",
                None,
            )
        )
    return found
