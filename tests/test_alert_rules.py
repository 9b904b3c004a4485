"""deploy/prometheus/alerts.yml: the alerts a deployment ships, over the series the app
exports, at the thresholds of the provider health page."""

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.system_tools import system_tool

PROMETHEUS = Path(__file__).resolve().parent.parent / "deploy" / "prometheus"
RULES = PROMETHEUS / "alerts.yml"


# The series /metrics exports and their labels, read off the app's own definitions: a rule
# over a name or label missing here reads a series that does not exist and never fires.
def _exported() -> dict[str, set[str]]:
    from prometheus_client import Counter, Histogram

    from conversations.observability import metrics

    series: dict[str, set[str]] = {}
    for metric in vars(metrics).values():
        if isinstance(metric, Counter):
            series[metric._name + "_total"] = set(metric._labelnames)
        elif isinstance(metric, Histogram):
            for suffix in ("_bucket", "_count", "_sum"):
                series[metric._name + suffix] = set(metric._labelnames) | (
                    {"le"} if suffix == "_bucket" else set()
                )
    # Read live at each scrape (conversations/observability/exposition.py).
    for name in ("chatsite_process_open_fds", "chatsite_process_max_fds"):
        series[name] = {"pid"}
    series["chatsite_job_queue_depth"] = {"queue"}
    return series


EXPORTED = _exported()
# Labels Prometheus adds to every scraped series.
TARGET_LABELS = {"instance", "job"}

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


def test_the_rules_read_only_series_and_labels_the_app_exports(rules):
    for name, rule in rules.items():
        expr = rule["expr"]
        used = set(re.findall(r"\bchatsite_[a-z0-9_]+", expr))
        assert used and used <= set(EXPORTED), (name, used - set(EXPORTED))
        known = set().union(*(EXPORTED[m] for m in used)) | TARGET_LABELS
        grouped = {
            label.strip()
            for clause in re.findall(r"\bby \(([^)]*)\)", expr)
            for label in clause.split(",")
        }
        matched = set(re.findall(r"[{,]\s*([a-z_]+)\s*=~?", expr))
        assert grouped | matched <= known, (name, (grouped | matched) - known)


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


def test_promtool_accepts_the_rules_and_they_fire_as_their_unit_tests_expect():
    promtool = system_tool("/usr/bin/promtool", "prometheus")
    for command in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts.test.yml"]):
        result = subprocess.run(
            [promtool, *command], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stdout + result.stderr
