"""The bench's verdict on live Markdown: its added CPU per token against the web process's."""

from bench import report_markdown


def _figures(stamps_live: float) -> dict:
    sizes = {
        size: {"live_us_per_token": live, "escaped_us_per_token": 0.5, "slowest_fragment_ms": 1.0}
        for size, live in (("1", stamps_live * 2), ("2", stamps_live), ("5", stamps_live / 2))
    }
    return {"tokens": 2000, "replies": {"stamps": sizes, "mixed": sizes, "paragraph": sizes}}


def _results(stamps_live: float, *, with_load: bool = True) -> dict:
    results = {"markdown_live": _figures(stamps_live)}
    if with_load:
        # 1 core of daphne for 10,000 tokens/s: 100 µs a token.
        cores = {"daphne-0": 0.5, "daphne-1": 0.5, "postgres": 0.3}
        results["chatsite"] = {"500": {"cpu_cores": cores, "tokens_per_second": 10_000}}
    return results


def _verdict(results: dict) -> str:
    [found] = [r for r in report_markdown.rows(results) if "added CPU" in r["figure"]]
    return found["verdict"]


def test_the_web_process_cpu_per_token_counts_the_daphnes_only():
    assert report_markdown.web_us_per_token(_results(5.0)) == (500, 100.0)


def test_live_markdown_within_a_tenth_of_the_web_process_passes_and_beyond_misses():
    assert _verdict(_results(5.0)) == "PASS"  # 4.5 µs added of 100
    assert _verdict(_results(12.0)) == "MISS"  # 11.5 µs added


def test_without_load_levels_the_cost_is_only_reported():
    assert _verdict(_results(5.0, with_load=False)) == "info"
    assert report_markdown.rows({}) == []
