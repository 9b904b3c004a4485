"""The bench's verdicts on capacity: a figure held at the top level tried is only a bound."""

import pytest

from bench import report


def _level(streams: int, *, added_p99_ms: float) -> dict:
    return {
        "streams": streams,
        "added_delta_p99_ms": added_p99_ms,
        "failures": 0,
        "replies_total": streams,
        "tokens_per_second": streams * 20,
    }


def _levels(held: list[int], missed: list[int]) -> dict:
    levels = {n: _level(n, added_p99_ms=100) for n in held}
    levels |= {n: _level(n, added_p99_ms=400) for n in missed}
    return levels


def _results(chatsite: dict, relay: dict) -> dict:
    return {"chatsite": chatsite, "relay": relay, "servers": 2, "load_tokens": 240}


def _row(rows: list[dict], figure: str) -> dict:
    return next(row for row in rows if row["figure"].startswith(figure))


@pytest.mark.parametrize(
    ("held", "missed", "between"),
    [
        ([100, 500, 750], [1000], 880),  # 875 to tens, as round() does
        ([500, 1000, 3000], [4000], 3500),
        ([100], [110], None),  # too close to split
        ([100, 500], [], None),  # nothing missed: nothing to refine
        ([], [100], None),  # nothing held: no figure to refine
    ],
)
def test_the_ramp_tries_halfway_between_the_capacity_and_the_first_miss(held, missed, between):
    found = report.halfway_to_first_miss(_levels(held, missed))
    assert found == between and (found is None or isinstance(found, int))


@pytest.mark.parametrize(
    ("held", "missed", "below"),
    [
        ([], [1000], 500),  # the relay's first level missed on a slow machine
        ([], [1000, 500, 250], 120),  # 125 to tens
        ([], [20], 10),
        ([], [10], None),  # the lowest level: nothing below to try
        ([250], [1000, 500], None),  # one held: the floor is found
        ([], [], None),
    ],
)
def test_a_ramp_whose_first_level_misses_reaches_down_until_one_holds(held, missed, below):
    assert report.level_below_first_miss(_levels(held, missed)) == below


def test_a_floor_found_below_the_first_level_gives_a_real_ratio():
    relay = _levels([250], [1000, 500])
    rows = report.capacity_rows(_results(_levels([100], [250]), relay))
    assert _row(rows, "Raw relay floor")["value"] == "250"
    assert _row(rows, "chatsite throughput")["value"] == "0.40"
    assert report.halfway_to_first_miss(relay) == 380


def test_a_relay_floor_at_the_top_level_tried_gives_no_passing_fraction():
    rows = report.capacity_rows(
        _results(_levels([250, 500, 750], [1000]), _levels([500, 1000, 1500], []))
    )
    fraction = _row(rows, "chatsite throughput")
    assert fraction["value"] == "at most 0.50"
    assert fraction["verdict"] == "MISS"
    assert _row(rows, "Raw relay floor")["value"] == "1,500 (top level tried: or more)"


def test_a_relay_floor_below_the_top_level_is_a_measured_fraction():
    rows = report.capacity_rows(
        _results(_levels([250, 500, 750], [1000]), _levels([500, 1000, 2000], [3000]))
    )
    assert _row(rows, "chatsite throughput") == {
        "figure": "chatsite throughput / relay floor",
        "value": "0.38",
        "target": ">= 0.33",
        "verdict": "PASS",
    }
    assert _row(rows, "Concurrent streams at 20")["value"] == "750 (375 per process)"
