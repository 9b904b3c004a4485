"""Usage totals: calls, tokens and cost summed by any grouping and per currency, and one
user's month of them by model and by day, with the "My usage" charts (usage.charts)."""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.contrib.auth.models import User
from django.db.models import Count, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from conversations.models import UsageRecord
from conversations.usage.charts import CostChart, cost_charts
from conversations.usage.months import month_after, month_start, records_in_month

# Money's zero, for every sum of cost in the package: a Decimal, like the amounts.
ZERO = Decimal(0)

# Calls, tokens and cost of a group of records: every usage figure sums these.
USAGE_SUMS = {
    "calls": Count("id"),
    "prompt": Coalesce(Sum("prompt_tokens"), 0),
    "completion": Coalesce(Sum("completion_tokens"), 0),
    "cached": Coalesce(Sum("cached_tokens"), 0),
    "reasoning": Coalesce(Sum("reasoning_tokens"), 0),
    "cost": Coalesce(Sum("cost"), Value(ZERO)),
}


def usage_totals_by(records: QuerySet[UsageRecord], *fields) -> list[dict]:
    """One row per value of `fields` and currency: calls, tokens and cost of `records`.

    A field may be a name or a (name, expression) pair, e.g. ("day", TruncDate(...)).
    """
    names = [f if isinstance(f, str) else f[0] for f in fields]
    expressions = {f[0]: f[1] for f in fields if not isinstance(f, str)}
    rows = (
        records.annotate(**expressions)
        .values(*names, "currency")
        .annotate(**USAGE_SUMS)
        .order_by(*names, "currency")
    )
    return [row | {"tokens": row["prompt"] + row["completion"]} for row in rows]


@dataclass
class Totals:
    """Calls and tokens over any currency; money per currency, never mixed."""

    calls: int = 0
    prompt: int = 0
    completion: int = 0
    cached: int = 0
    reasoning: int = 0
    cost: dict[str, Decimal] = field(default_factory=dict)

    @property
    def tokens(self) -> int:
        return self.prompt + self.completion

    def add(self, row: dict) -> None:
        self.calls += row["calls"]
        self.prompt += row["prompt"]
        self.completion += row["completion"]
        self.cached += row["cached"]
        self.reasoning += row["reasoning"]
        self.cost[row["currency"]] = self.cost.get(row["currency"], ZERO) + row["cost"]


def totals_of(rows: list[dict]) -> Totals:
    totals = Totals()
    for row in rows:
        totals.add(row)
    return totals


@dataclass
class DayBar:
    day: date
    tokens: int = 0
    calls: int = 0
    cost: dict[str, Decimal] = field(default_factory=dict)


@dataclass
class MonthUsage:
    start: datetime
    totals: Totals
    by_model: list[dict]
    by_day: list[DayBar]
    previous: datetime
    following: datetime | None
    # Cost by day and model, one chart per currency.
    charts: list[CostChart] = field(default_factory=list)


def _day_bars(rows: list[dict], start: datetime) -> list[DayBar]:
    """Every day of the month up to today, tokens summed over currencies, cost per currency."""
    first, following = start.date(), month_after(start).date()
    last = min(timezone.localdate(), following - timedelta(days=1))
    days = [first + timedelta(days=n) for n in range(max((last - first).days + 1, 1))]
    bars = {day: DayBar(day=day) for day in days}
    for row in rows:
        bar = bars.setdefault(row["day"], DayBar(day=row["day"]))
        bar.tokens += row["tokens"]
        bar.calls += row["calls"]
        bar.cost[row["currency"]] = bar.cost.get(row["currency"], ZERO) + row["cost"]
    return sorted(bars.values(), key=lambda b: b.day)


def usage_month_for_user(user: User, start: datetime | None = None) -> MonthUsage:
    """A user's usage in one month: totals, by model and by day."""
    start = month_start(start)
    records = records_in_month(start).filter(user=user)
    by_model = usage_totals_by(records, "provider_slug", "model_name")
    day = ("day", TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
    by_day = usage_totals_by(records, day)
    by_day_and_model = usage_totals_by(records, day, "provider_slug", "model_name")
    following = month_after(start)
    return MonthUsage(
        start=start,
        totals=totals_of(by_model),
        by_model=by_model,
        by_day=_day_bars(by_day, start),
        previous=month_start(start - timedelta(days=1)),
        following=following if following <= timezone.now() else None,
        charts=cost_charts(by_day_and_model, start),
    )
