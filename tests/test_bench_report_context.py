"""The bench's verdicts on context fidelity: drops at a human pace, one chain, the window."""

from bench import report_context


def _chat(**changes) -> dict:
    chat = {
        "window": 4096,
        "pause_seconds": 1.0,
        "turns": 300,
        "requests_with_drops": 0,
        "summary_calls_per_100_turns": 9.3,
        "summary_chains": 1,
        "largest_reported_prompt": 2600,
        "prompt_room": 3072,
        "tokenizer": "qwen",
        "count_error": {"en": {"mean": 0.02, "mean_size": 0.03}},
    }
    return chat | changes


def _verdicts(chat: dict) -> dict[str, str]:
    rows = report_context.rows({"context_fidelity": {"turns": 300, "chats": {"c": chat}}})
    return {row["figure"].split(",")[0]: row["verdict"] for row in rows}


def test_a_paced_chat_without_drops_one_chain_and_room_passes():
    assert set(_verdicts(_chat()).values()) <= {"PASS", "info"}


def test_a_drop_at_a_human_pace_is_a_miss_and_back_to_back_only_informs():
    assert _verdicts(_chat(requests_with_drops=3))["Requests with unsummarised drops"] == "MISS"
    back_to_back = _verdicts(_chat(requests_with_drops=3, pause_seconds=0.0))
    assert back_to_back["Requests with unsummarised drops"] == "info"


def test_two_chains_a_prompt_over_the_room_or_a_far_count_are_misses():
    verdicts = _verdicts(
        _chat(
            summary_chains=2,
            largest_reported_prompt=3100,
            count_error={"zh": {"mean": 0.35, "mean_size": 0.35}},
        )
    )
    assert verdicts["Summary chains"] == "MISS"
    assert verdicts["Largest prompt (tokenizer's count) vs room"] == "MISS"
    assert verdicts["Token count error vs the bundled tokenizer"] == "MISS"


def test_a_run_cut_short_is_not_a_pass():
    verdicts = _verdicts(_chat(turns=120))
    assert verdicts["Requests with unsummarised drops"] == "MISS"
