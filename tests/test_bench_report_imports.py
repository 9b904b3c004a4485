"""The bench's verdicts on imports: the issue's throughput and memory targets."""

from bench import report_imports


def _verdicts(**changes) -> dict[str, str]:
    phase = {
        "messages": 100_012,
        "seconds": 18.0,
        "messages_per_second": 5_556.2,
        "peak_rss_mb": 158.0,
        "cpu_seconds": 16.0,
        "database_cpu_seconds": 16.3,
    } | changes
    return {row["figure"]: row["verdict"] for row in report_imports.rows({"import": phase})}


def test_an_import_at_the_targets_passes_both_rows():
    verdicts = _verdicts()
    assert verdicts["Import, 100,000-message ChatGPT export"] == "PASS"
    assert verdicts["Import peak memory (process VmHWM)"] == "PASS"


def test_a_slow_import_misses_the_throughput_row():
    verdicts = _verdicts(messages_per_second=1_574.0)
    assert verdicts["Import, 100,000-message ChatGPT export"] == "MISS"


def test_a_smaller_export_than_the_target_cannot_pass():
    rows = _verdicts(messages=30_008)
    assert rows["Import, 100,000-message ChatGPT export"] == "MISS"


def test_memory_over_the_limit_misses():
    assert _verdicts(peak_rss_mb=230.0)["Import peak memory (process VmHWM)"] == "MISS"


def test_a_run_without_the_import_phase_has_no_rows():
    assert report_imports.rows({}) == []
