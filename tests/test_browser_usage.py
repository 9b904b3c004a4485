"""In Chromium: My usage's cost chart, a day's values on hover and on keyboard focus."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from conversations.models import UsageRecord
from tests.conftest import save_screenshot
from tests.factories import UsageRecordFactory
from tests.test_browser_comfort import csp_complaints

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _today_and_first(user) -> str:
    today = timezone.localtime()
    UsageRecordFactory(user=user, cost=Decimal("0.0120"))
    UsageRecordFactory(
        user=user, provider_slug="openai", model_name="gpt-4o-mini", cost=Decimal("0.0050")
    )
    first = UsageRecordFactory(
        user=user, provider_slug="openai", model_name="gpt-4o-mini", cost=Decimal("0.0300")
    )
    UsageRecordFactory(
        user=user,
        provider_slug="dashscope",
        model_name="qwen-plus",
        currency="CNY",
        cost=Decimal("0.2000"),
    )
    if today.day > 1:
        UsageRecord.objects.filter(pk=first.pk).update(
            created_at=today - timedelta(days=today.day - 1)
        )
    return today.strftime("%Y-%m-%d")


def test_hovering_a_day_shows_each_models_cost(login, browser_context, alice, live_server_url):
    day = _today_and_first(alice)
    page = browser_context.new_page()
    complaints = csp_complaints(page)
    page = login(alice, page)
    page.goto(f"{live_server_url}/usage/")
    charts = page.locator(".usage-chart-figure")
    expect(charts).to_have_count(2)
    usd = page.locator("#usage-chart-USD")
    column = usd.locator(f'.usage-day[data-day="{day}"]')
    column.locator(".usage-bar").first.hover()
    tip = usd.locator(".usage-tip-overlay .usage-tip")
    expect(tip).to_be_visible()
    expect(tip).to_contain_text("local/fake-model: 0.012")
    expect(tip).to_contain_text("openai/gpt-4o-mini: 0.005")
    save_screenshot(page, "usage-chart-hover")
    # The same from the keyboard: a day with usage takes focus and shows its values.
    page.mouse.move(0, 0)
    expect(tip).to_have_count(0)
    column.focus()
    expect(usd.locator(".usage-tip-overlay .usage-tip")).to_contain_text("Total: 0.017 USD")
    legend = usd.locator(".usage-legend li")
    expect(legend).to_have_text(["local/fake-model", "openai/gpt-4o-mini"])
    swatch = legend.first.locator(".usage-swatch")
    bar = usd.locator('.usage-bar[data-model="local/fake-model"]').first
    assert swatch.evaluate("e => getComputedStyle(e).backgroundColor") == bar.evaluate(
        "e => getComputedStyle(e).fill"
    )
    page.emulate_media(color_scheme="dark")
    save_screenshot(page, "usage-chart-dark")
    assert complaints == []
