"""bench/report_recall.py: streaming with recall on is judged against the same limits as
with it off, and an unindexed backlog or a reply that did not recall is a miss."""

from bench import report_recall


def _level(*, added_ttft_ms: float, added_delta_p99_ms: float) -> dict:
    return {
        "added_ttft_p50_ms": added_ttft_ms,
        "added_send_ttft_p50_ms": added_ttft_ms + 80,
        "added_delta_p99_ms": added_delta_p99_ms,
        "cpu_cores": {"recall-daphne-0": 0.5, "recall-worker": 0.9},
    }


def _mode(*, delta_p99_ms: float = 40, **extra) -> dict:
    return {
        "single": _level(added_ttft_ms=0.5, added_delta_p99_ms=2),
        "load": _level(added_ttft_ms=0.6, added_delta_p99_ms=delta_p99_ms),
        **extra,
    }


def _verdicts(on: dict) -> dict[str, str]:
    results = {"recall_load": {"streams": 100, "off": _mode(), "on": on}}
    return {row["figure"]: row["verdict"] for row in report_recall.rows(results)}


def test_recall_on_that_holds_the_limits_and_drains_its_backlog_passes():
    verdicts = _verdicts(
        _mode(
            recalled={"hybrid": 40},
            indexing={"backlog_messages": 12, "drain_seconds": 3.0, "left_after_timeout": 0},
        )
    )
    judged = {figure: v for figure, v in verdicts.items() if v in ("PASS", "MISS")}
    assert judged and set(judged.values()) == {"PASS"}, judged


def test_a_late_stream_a_reply_without_vectors_or_an_undrained_backlog_is_a_miss():
    verdicts = _verdicts(
        _mode(
            delta_p99_ms=400,
            recalled={"hybrid": 30, "lexical": 10},
            indexing={"backlog_messages": 900, "drain_seconds": 120.0, "left_after_timeout": 300},
        )
    )
    assert verdicts["Recall on: Added delta latency p99, 100 streams"] == "MISS"
    assert verdicts["Recall on: replies that recalled (hybrid)"] == "MISS"
    assert verdicts["Recall on: worker's backlog when the load stopped"] == "MISS"
