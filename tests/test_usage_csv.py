"""Usage statements as CSV: a month per user, model, kind and currency, totals that match the
ledger to the smallest unit, and cells a spreadsheet cannot run."""

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum

from conversations import usage
from conversations.models import UsageKind, UsageRecord
from conversations.usage_csv import safe_cell
from tests.factories import UsageRecordFactory, UserFactory

pytestmark = pytest.mark.django_db


def _lines(response) -> list[dict]:
    assert response.streaming, "the statement is streamed, not built whole"
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def _dated(record: UsageRecord, when) -> UsageRecord:
    UsageRecord.objects.filter(pk=record.pk).update(created_at=when)
    return record


@pytest.fixture
def ledger(user, other_user):
    """This month: two models and two currencies for `user`, one row for `other_user`,
    costs down to the ledger's eighth decimal place; and rows just outside the month."""
    start = usage.month_start()
    for cost in ("0.00000001", "0.12345678", "1.00000009"):
        UsageRecordFactory(user=user, cost=Decimal(cost))
    UsageRecordFactory(user=user, kind=UsageKind.SUMMARY, cost=Decimal("0.00000003"))
    for _ in range(3):
        UsageRecordFactory(
            user=user,
            provider_slug="deepseek",
            model_name="deepseek-chat",
            currency="CNY",
            cost=Decimal("0.00271828"),
            cached_tokens=400,
            reasoning_tokens=20,
        )
    UsageRecordFactory(user=other_user, cost=Decimal("5"))
    _dated(UsageRecordFactory(user=user, cost=Decimal("9")), start - timedelta(seconds=1))
    return start


def test_my_statement_has_a_line_per_model_kind_and_currency_and_totals_matching_the_ledger(
    client, user, ledger
):
    client.force_login(user)
    response = client.get(f"/usage/statement.csv?month={ledger:%Y-%m}")
    assert response["Content-Type"].startswith("text/csv")
    assert f"chatsite-usage-{ledger:%Y-%m}-{user.username}.csv" in response["Content-Disposition"]
    lines = _lines(response)
    items = [line for line in lines if line["line"] == "usage"]
    totals = {line["currency"]: line for line in lines if line["line"] == "total"}

    assert {(i["provider"], i["model"], i["kind"], i["currency"]) for i in items} == {
        ("local", "fake-model", "chat", "USD"),
        ("local", "fake-model", "summary", "USD"),
        ("deepseek", "deepseek-chat", "chat", "CNY"),
    }
    assert all(i["user"] == user.username and i["month"] == f"{ledger:%Y-%m}" for i in items)
    deepseek = next(i for i in items if i["currency"] == "CNY")
    assert (deepseek["calls"], deepseek["cached_input_tokens"], deepseek["reasoning_tokens"]) == (
        "3",
        "1200",
        "60",
    )
    in_month = UsageRecord.objects.filter(user=user, created_at__gte=ledger)
    for currency in ("USD", "CNY"):
        held = in_month.filter(currency=currency).aggregate(c=Sum("cost"))["c"]
        lines_sum = sum(Decimal(i["cost"]) for i in items if i["currency"] == currency)
        assert lines_sum == Decimal(totals[currency]["cost"]) == held
    assert Decimal(totals["USD"]["cost"]) == Decimal("1.12345691")  # not the older 9, nor 5
    assert totals["USD"]["calls"] == "4"


def test_the_admin_statement_covers_every_user(admin_client, user, other_user, ledger):
    response = admin_client.get(
        f"/admin/conversations/usagerecord/statement.csv?month={ledger:%Y-%m}"
    )
    lines = _lines(response)
    users = {line["user"] for line in lines if line["line"] == "usage"}
    assert users == {user.username, other_user.username}
    usd = next(line for line in lines if line["line"] == "total" and line["currency"] == "USD")
    held = UsageRecord.objects.filter(created_at__gte=ledger, currency="USD").aggregate(
        c=Sum("cost")
    )["c"]
    assert Decimal(usd["cost"]) == held == Decimal("6.12345691")


def test_the_admin_statement_is_for_staff_only(client, user, ledger):
    client.force_login(user)
    response = client.get("/admin/conversations/usagerecord/statement.csv")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


@pytest.mark.parametrize("name", ["=cmd|' /C calc'!A0", "+1+1", "-2+3", "@SUM(A1)"])
def test_a_cell_a_spreadsheet_would_run_arrives_as_text(client, name):
    owner = UserFactory(username=name.replace(" ", "").replace("|", "").replace("'", "")[:30])
    UsageRecordFactory(user=owner, model_name=name)
    client.force_login(owner)
    items = [line for line in _lines(client.get("/usage/statement.csv")) if line["line"] == "usage"]
    assert items[0]["model"] == "'" + name
    assert items[0]["user"] == "'" + owner.username
    assert items[0]["cost"] == "0.00600000", "numbers are left as numbers"


def test_safe_cell_leaves_ordinary_text_alone():
    assert safe_cell("deepseek-chat") == "deepseek-chat"
    assert safe_cell("\tx") == "'\tx" and safe_cell("\rx") == "'\rx"


def test_a_month_that_is_not_one_is_refused(client, user):
    client.force_login(user)
    for month in ("2026-13", "last", "2026"):
        response = client.get(f"/usage/statement.csv?month={month}")
        assert response.status_code == 400
        assert "must look like 2026-03" in response.content.decode()


def test_a_statement_only_shows_its_owners_usage(client, other_user, ledger):
    client.force_login(other_user)
    lines = _lines(client.get("/usage/statement.csv"))
    assert [line["cost"] for line in lines if line["line"] == "usage"] == ["5.00000000"]


def test_the_usage_page_links_to_its_months_statement(client, user):
    client.force_login(user)
    page = client.get("/usage/?month=2026-03").content.decode()
    assert 'href="/usage/statement.csv?month=2026-03"' in page


def test_the_usage_page_shows_thinking_tokens_in_total_and_by_model(client, user, ledger):
    client.force_login(user)
    response = client.get("/usage/")
    assert response.context["month"].totals.reasoning == 60
    page = response.content.decode()
    assert '<dd id="usage-reasoning">60</dd>' in page
    assert "<td>deepseek/deepseek-chat</td><td>3</td><td>3000</td><td>1200</td>" in page


def test_the_ledger_page_links_to_this_months_statement(admin_client, ledger):
    page = admin_client.get("/admin/conversations/usagerecord/").content.decode()
    assert f'href="/admin/conversations/usagerecord/statement.csv?month={ledger:%Y-%m}"' in page
    response = admin_client.get("/admin/conversations/usagerecord/statement.csv")
    assert f"chatsite-usage-{ledger:%Y-%m}-all.csv" in response["Content-Disposition"]
