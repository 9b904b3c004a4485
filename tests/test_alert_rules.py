"""deploy/prometheus/alerts.yml: the alerts a deployment ships, over the series the app
exports, at the thresholds of the provider health page."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

PROMETHEUS = Path(__file__).resolve().parent.parent / "deploy" / "prometheus"
RULES = PROMETHEUS / "alerts.yml"

# The series the rules may read, as /metrics exports them (conversations/observability/):
# a rule over a name missing here reads a series that does not exist and never fires.
EXPORTED_METRICS = {
    "chatsite_replies_total",
    "chatsite_reply_ttft_seconds_bucket",
    "chatsite_upstream_errors_total",
    "chatsite_http_responses_total",
    "chatsite_process_open_fds",
    "chatsite_process_max_fds",
}

EXPECTED_ALERTS = {
    "chatsite-providers": [
        "ChatsiteProviderErrorRateHigh",
        "ChatsiteProviderSlowFirstToken",
        "ChatsiteUpstreamErrors",
        "ChatsiteUpstreamClientErrors",
    ],
    "chatsite-http": ["ChatsiteHttp5xxRising", "ChatsiteHttp4xxRising"],
    "chatsite-process": ["ChatsiteFileDescriptorsNearLimit"],
}


@pytest.fixture(scope="module")
def rules() -> dict[str, dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"]}


def test_the_rules_file_parses_into_the_expected_groups_and_alerts():
    groups = yaml.safe_load(RULES.read_text())["groups"]
    found = {group["name"]: [rule["alert"] for rule in group["rules"]] for group in groups}
    assert found == EXPECTED_ALERTS


def test_every_alert_has_an_expression_a_wait_a_severity_and_a_summary(rules):
    for name, rule in rules.items():
        assert rule["expr"].strip(), name
        assert re.fullmatch(r"\d+[smh]", rule["for"]), name
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name


def test_the_rules_read_only_series_the_app_exports(rules):
    used = {
        metric
        for rule in rules.values()
        for metric in re.findall(r"\bchatsite_[a-z0-9_]+", rule["expr"])
    }
    assert used == EXPORTED_METRICS


def test_the_provider_alerts_use_the_health_page_defaults(rules):
    """PROVIDER_HEALTH_ERROR_RATE=0.2, PROVIDER_HEALTH_TTFT_P95_SECONDS=10 and
    PROVIDER_HEALTH_MIN_CALLS=5 by default (chatsite/settings_operations.py)."""
    error_rate = rules["ChatsiteProviderErrorRateHigh"]["expr"]
    ttft = rules["ChatsiteProviderSlowFirstToken"]["expr"]
    assert re.search(r"\)\s*> 0\.2\b", error_rate) and ">= 5" in error_rate
    assert re.search(r"histogram_quantile\(\s*0\.95", ttft) and re.search(r"\)\s*> 10\b", ttft)
    assert ">= 5" in ttft
    for expr in (error_rate, ttft):
        assert "by (provider, model)" in expr and "[15m]" in expr


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_rules_and_they_fire_as_their_unit_tests_expect():
    for command in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts.test.yml"]):
        result = subprocess.run(
            ["promtool", *command], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stdout + result.stderr
