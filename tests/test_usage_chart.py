"""My usage: a cost chart per currency, with axes, day labels, a colour per model and the
ledger's values on every bar."""

import re
from datetime import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from conversations.models import UsageRecord
from conversations.usage import charts
from tests.factories import UsageRecordFactory

pytestmark = pytest.mark.django_db


def _on(day: int, **fields) -> UsageRecord:
    record = UsageRecordFactory(**fields)
    when = timezone.make_aware(datetime(2026, 3, day, 12))
    UsageRecord.objects.filter(pk=record.pk).update(created_at=when)
    return record


@pytest.fixture
def march(user):
    """Alice's March: two models in dollars (one twice on the 3rd), one in yuan."""
    _on(3, user=user, model_name="fake-model", cost=Decimal("0.0120"))
    _on(3, user=user, model_name="fake-model", cost=Decimal("0.0030"))
    _on(3, user=user, model_name="gpt-4o-mini", provider_slug="openai", cost=Decimal("0.0050"))
    _on(17, user=user, model_name="gpt-4o-mini", provider_slug="openai", cost=Decimal("0.0400"))
    _on(
        9,
        user=user,
        model_name="qwen-plus",
        provider_slug="dashscope",
        currency="CNY",
        cost=Decimal("0.2000"),
    )


def _page(client, user) -> str:
    client.force_login(user)
    return client.get("/usage/", {"month": "2026-03"}).content.decode()


def _figure(page: str, currency: str) -> str:
    return re.search(rf'<figure[^>]*id="usage-chart-{currency}".*?</figure>', page, re.S).group(0)


def _bars(figure: str) -> list[dict]:
    return [
        dict(re.findall(r'(data-[a-z]+|class)="([^"]*)"', bar))
        | {"title": re.search(r"<title>(.*?)</title>", bar).group(1)}
        for bar in re.findall(r'<rect class="usage-bar.*?</rect>', figure, re.S)
    ]


def test_two_currencies_give_two_charts_and_never_mix(client, user, march):
    page = _page(client, user)
    assert page.count('<figure class="usage-chart-figure"') == 2
    usd, cny = _figure(page, "USD"), _figure(page, "CNY")
    assert "qwen-plus" not in usd and "fake-model" not in cny
    assert 'role="img"' in usd and "aria-label=" in usd
    assert 'id="usage-by-day"' in page  # the table says the same in words


def test_each_bar_is_one_models_cost_that_day_as_the_ledger_has_it(client, user, march):
    bars = _bars(_figure(_page(client, user), "USD"))
    got = {(b["data-model"], b["title"].split(" ·")[0]): Decimal(b["data-cost"]) for b in bars}
    assert got == {
        ("local/fake-model", "March 3"): Decimal("0.0150"),  # two calls, summed
        ("openai/gpt-4o-mini", "March 3"): Decimal("0.0050"),
        ("openai/gpt-4o-mini", "March 17"): Decimal("0.0400"),
    }
    assert any("local/fake-model: 0.015 USD" in b["title"] for b in bars)


def test_a_model_has_one_colour_in_every_bar_chart_and_legend(client, user, march):
    page = _page(client, user)
    usd = _figure(page, "USD")
    series = {}
    for bar in _bars(usd):
        series.setdefault(bar["data-model"], set()).add(bar["data-series"])
    assert all(len(colours) == 1 for colours in series.values())
    assert len({next(iter(c)) for c in series.values()}) == 2  # two models, two colours
    legend = dict(re.findall(r'<li data-model="([^"]+)" data-series="(\d+)"', usd))
    assert legend == {model: next(iter(c)) for model, c in series.items()}
    # Across currencies too: the same month's model keeps its colour everywhere.
    cny_legend = dict(
        re.findall(r'<li data-model="([^"]+)" data-series="(\d+)"', _figure(page, "CNY"))
    )
    assert set(cny_legend.values()).isdisjoint(legend.values())


def test_every_day_of_the_month_is_labelled_and_the_y_axis_has_money_ticks(client, user, march):
    usd = _figure(_page(client, user), "USD")
    labels = re.findall(r'<text class="usage-label usage-label--x"[^>]*>(\d+)</text>', usd)
    assert labels == [str(day) for day in range(1, 32)]
    ticks = re.findall(r'<text class="usage-label usage-label--y"[^>]*>([^<]+)</text>', usd)
    assert ticks[0] == "0" and Decimal(ticks[-1]) >= Decimal("0.04")
    assert len(ticks) == charts.Y_TICKS + 1


def test_a_days_tooltip_lists_each_model_and_the_total(client, user, march):
    usd = _figure(_page(client, user), "USD")
    day = re.search(
        r'<g class="usage-day usage-day--used" data-day="2026-03-03".*?</g>\s*</g>', usd, re.S
    ).group(0)
    assert 'tabindex="0"' in day
    text = re.sub(r"<[^>]+>", "", re.search(r'<g class="usage-tip".*?</g>', day, re.S).group(0))
    assert "local/fake-model: 0.015" in text and "openai/gpt-4o-mini: 0.005" in text
    assert "Total: 0.02 USD" in text


def test_bars_stack_to_their_days_total_on_the_axis_scale():
    rows = [
        {
            "day": datetime(2026, 3, 3).date(),
            "provider_slug": "a",
            "model_name": "x",
            "currency": "USD",
            "cost": Decimal("1"),
        },
        {
            "day": datetime(2026, 3, 3).date(),
            "provider_slug": "b",
            "model_name": "y",
            "currency": "USD",
            "cost": Decimal("3"),
        },
    ]
    (chart,) = charts.cost_charts(rows, timezone.make_aware(datetime(2026, 3, 1)))
    assert chart.top == Decimal(4)
    day = chart.days[2]
    assert [s.height for s in day.segments] == [
        round(charts.PLOT_HEIGHT / 4, 1),
        round(charts.PLOT_HEIGHT * 3 / 4, 1),
    ]
    assert day.segments[-1].y == charts.TOP  # the day's total reaches the top tick


def test_no_usage_draws_no_chart(client, user):
    page = _page(client, user)
    assert "usage-chart-figure" not in page and "No usage this month." in page
