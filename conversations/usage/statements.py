"""A month's usage as an accounting statement: one row per user, model, kind of call and
currency, and a total per currency, for the CSV exports ("My usage" and the admin's).

Costs are summed by Postgres over the ledger's exact amounts (eight decimal places), so the
rows add up to the totals, and the totals to the ledger, to the smallest unit.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, cast

from django.contrib.auth.models import User
from django.db.models import QuerySet

from conversations.models import UsageRecord
from conversations.usage.months import month_start, records_in_month
from conversations.usage.totals import USAGE_SUMS

ROW_CHUNK = 2000

_GROUPS = ("user__username", "provider_slug", "model_name", "kind", "currency")


@dataclass(frozen=True)
class StatementRow:
    username: str
    provider: str
    model: str
    kind: str
    currency: str
    calls: int
    prompt: int
    cached: int
    completion: int
    reasoning: int
    cost: Decimal


def _records(start: datetime, user: User | None) -> QuerySet[UsageRecord]:
    records = records_in_month(month_start(start))
    return records.filter(user=user) if user is not None else records


def _statement_row(row: dict[str, Any]) -> StatementRow:
    return StatementRow(
        username=row.get("user__username", ""),
        provider=row.get("provider_slug", ""),
        model=row.get("model_name", ""),
        kind=row.get("kind", ""),
        currency=row["currency"],
        calls=row["calls"],
        prompt=row["prompt"],
        cached=row["cached"],
        completion=row["completion"],
        reasoning=row["reasoning"],
        cost=row["cost"],
    )


def statement_rows(start: datetime, user: User | None = None) -> Iterator[StatementRow]:
    """The month's rows (every user's when `user` is None), read in chunks."""
    rows = _records(start, user).values(*_GROUPS).annotate(**USAGE_SUMS).order_by(*_GROUPS)
    for row in rows.iterator(chunk_size=ROW_CHUNK):
        yield _statement_row(row)


def statement_totals(start: datetime, user: User | None = None) -> list[StatementRow]:
    """One total per currency: what the ledger holds for the month."""
    rows = _records(start, user).values("currency").annotate(**USAGE_SUMS).order_by("currency")
    # The stubs type a values() row by its grouping alone, without the sums annotated.
    return [_statement_row(cast(dict[str, Any], row)) for row in rows]
