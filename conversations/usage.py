"""Reads about usage, cost and budgets (a selector module, like `selectors.py`).

Money is summed per currency and never added across currencies: every figure that holds
money is a `{currency: amount}` mapping. Months are calendar months in the site's time zone.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import (
    BigIntegerField,
    CharField,
    Count,
    DecimalField,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone
from django.utils.translation import gettext, pgettext

from conversations.models import Conversation, Currency, Message, UsageBudget, UsageRecord

# Share of a limit at which the user is warned; at 1.0 sending is refused.
BUDGET_WARNING_AT = 0.8
ZERO = Decimal(0)


# --- Months ----------------------------------------------------------------------------


def month_start(when: datetime | None = None) -> datetime:
    """Midnight on the first of the month containing `when` (default: now), site time."""
    local = timezone.localtime(when or timezone.now())
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def month_after(start: datetime) -> datetime:
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return start.replace(year=year, month=month)


def month_of(year: int, month: int) -> datetime:
    """The start of year-month in site time; ValueError for a month that does not exist."""
    return timezone.make_aware(datetime(year, month, 1))


def records_in_month(start: datetime) -> QuerySet[UsageRecord]:
    return UsageRecord.objects.filter(created_at__gte=start, created_at__lt=month_after(start))


# --- Totals ----------------------------------------------------------------------------

_SUMS = {
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
        .annotate(**_SUMS)
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
    cost: dict[str, Decimal] = field(default_factory=dict)

    @property
    def tokens(self) -> int:
        return self.prompt + self.completion

    def add(self, row: dict) -> None:
        self.calls += row["calls"]
        self.prompt += row["prompt"]
        self.completion += row["completion"]
        self.cached += row["cached"]
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
    # Position and size in the SVG chart, in its own units (y grows downwards).
    x: int = 0
    y: int = 0
    height: int = 0


@dataclass
class MonthUsage:
    start: datetime
    totals: Totals
    by_model: list[dict]
    by_day: list[DayBar]
    previous: datetime
    following: datetime | None

    @property
    def chart_width(self) -> int:
        return max(len(self.by_day), 1) * CHART_BAR_STEP


CHART_HEIGHT = 120
CHART_BAR_STEP = 14
CHART_BAR_WIDTH = 10


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
    ordered = sorted(bars.values(), key=lambda b: b.day)
    peak = max((b.tokens for b in ordered), default=0) or 1
    for index, bar in enumerate(ordered):
        bar.x = index * CHART_BAR_STEP
        bar.height = round(bar.tokens / peak * CHART_HEIGHT)
        bar.y = CHART_HEIGHT - bar.height
    return ordered


def usage_month_for_user(user: AbstractBaseUser, start: datetime | None = None) -> MonthUsage:
    """A user's usage in one month: totals, by model and by day."""
    start = month_start(start)
    records = records_in_month(start).filter(user=user)
    by_model = usage_totals_by(records, "provider_slug", "model_name")
    by_day = usage_totals_by(
        records, ("day", TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
    )
    following = month_after(start)
    return MonthUsage(
        start=start,
        totals=totals_of(by_model),
        by_model=by_model,
        by_day=_day_bars(by_day, start),
        previous=month_start(start - timedelta(days=1)),
        following=following if following <= timezone.now() else None,
    )


# --- Budgets ---------------------------------------------------------------------------


def budget_for_user(user: AbstractBaseUser) -> UsageBudget | None:
    """The user's own budget, else the site default, else None (no limit)."""
    rows = UsageBudget.objects.filter(Q(user=user.pk) | Q(user__isnull=True))
    budgets = {b.user_id: b for b in rows}
    return budgets.get(user.pk) or budgets.get(None)


@dataclass
class BudgetStatus:
    budget: UsageBudget | None
    tokens_used: int = 0
    # Spending this month in the budget's currency only.
    money_used: Decimal = ZERO
    user: AbstractBaseUser | None = None

    @property
    def token_share(self) -> float:
        limit = self.budget and self.budget.token_limit
        if limit is None:
            return 0.0
        return self.tokens_used / limit if limit else float("inf")

    @property
    def money_share(self) -> float:
        limit = self.budget and self.budget.money_limit
        if limit is None:
            return 0.0
        return float(self.money_used / limit) if limit else float("inf")

    @property
    def share(self) -> float:
        return max(self.token_share, self.money_share)

    @property
    def percent(self) -> int:
        # Floored (79.9% is not yet 80%), with room for float error (2300/2000 is 115%).
        return min(int(self.share * 100 + 1e-9), 999)

    @property
    def is_over(self) -> bool:
        return self.share >= 1.0

    @property
    def is_near(self) -> bool:
        return BUDGET_WARNING_AT <= self.share < 1.0

    @property
    def summary(self) -> str:
        """What was used of which limit, e.g. "8,100 of 10,000 tokens; 4.10 of 5.00 USD"."""
        parts = []
        if self.budget and self.budget.token_limit is not None:
            parts.append(
                gettext("%(used)s of %(limit)s tokens")
                % {"used": f"{self.tokens_used:,}", "limit": f"{self.budget.token_limit:,}"}
            )
        if self.budget and self.budget.money_limit is not None:
            parts.append(
                gettext("%(used)s of %(limit)s %(currency)s")
                % {
                    "used": f"{self.money_used:.2f}",
                    "limit": f"{self.budget.money_limit:.2f}",
                    "currency": self.budget.currency,
                }
            )
        return pgettext("between the parts of a list", "; ").join(parts)


def _used(records: QuerySet[UsageRecord], currency: str) -> tuple[int, Decimal]:
    sums = records.aggregate(
        tokens=Coalesce(Sum(F("prompt_tokens") + F("completion_tokens")), 0),
        money=Coalesce(Sum("cost", filter=Q(currency=currency)), Value(ZERO)),
    )
    return sums["tokens"], sums["money"]


def budget_status(user: AbstractBaseUser) -> BudgetStatus:
    """How much of this month's budget `user` has used."""
    budget = budget_for_user(user)
    if budget is None:
        return BudgetStatus(budget=None, user=user)
    records = records_in_month(month_start()).filter(user=user)
    tokens, money = _used(records, budget.currency)
    return BudgetStatus(budget=budget, tokens_used=tokens, money_used=money, user=user)


def with_budget_use(conversations: QuerySet[Conversation]) -> QuerySet[Conversation]:
    """Annotated with the owner's budget and this month's use of it (`budget_*`), so the
    query that loads a conversation for a send also answers the budget check.

    Hand-written subqueries: built from ORM expressions, this one query cost several
    milliseconds of CPU to compile on every send."""
    start = month_start()
    month = [connection.ops.adapt_datetimefield_value(t) for t in (start, month_after(start))]
    budget = {
        f"budget_{column}": RawSQL(_BUDGET_COLUMN.format(column=column), [], output_field=field)
        for column, field in _BUDGET_FIELDS.items()
    }
    return conversations.annotate(
        **budget,
        budget_tokens_used=RawSQL(_BUDGET_TOKENS_USED, month, output_field=BigIntegerField()),
        budget_money_used=RawSQL(_BUDGET_MONEY_USED, month, output_field=_MONEY),
    )


_MONEY = DecimalField(max_digits=20, decimal_places=8)
_BUDGET_FIELDS = {
    "id": BigIntegerField(),
    "user_id": BigIntegerField(),
    "token_limit": BigIntegerField(),
    "money_limit": DecimalField(max_digits=12, decimal_places=2),
    "currency": CharField(),
}
_TABLES = {
    "conversation": Conversation._meta.db_table,
    "budget": UsageBudget._meta.db_table,
    "record": UsageRecord._meta.db_table,
}
# The owner's own budget row, else the site default (NULL user sorts last).
_BUDGET_ROW = (
    "SELECT {{column}} FROM {budget} AS b"
    " WHERE b.user_id = {conversation}.owner_id OR b.user_id IS NULL"
    " ORDER BY b.user_id IS NULL LIMIT 1"
).format(**_TABLES)
_BUDGET_COLUMN = f"({_BUDGET_ROW})"
_MONTH_OF_OWNER = (
    " FROM {record} AS r WHERE r.user_id = {conversation}.owner_id"
    " AND r.created_at >= %s AND r.created_at < %s"
).format(**_TABLES)
# Summed only when a budget applies: a CASE runs its subquery only in the branch taken.
_BUDGET_TOKENS_USED = (
    f"CASE WHEN EXISTS ({_BUDGET_ROW.format(column='1')}) THEN"
    f" (SELECT COALESCE(SUM(r.prompt_tokens + r.completion_tokens), 0){_MONTH_OF_OWNER})"
    " ELSE 0 END"
)
_BUDGET_MONEY_USED = (
    f"CASE WHEN EXISTS ({_BUDGET_ROW.format(column='1')}) THEN"
    f" (SELECT COALESCE(SUM(r.cost), 0){_MONTH_OF_OWNER}"
    f" AND r.currency = ({_BUDGET_ROW.format(column='b.currency')})) ELSE 0 END"
)


def budget_status_of_owner(conversation: Conversation) -> BudgetStatus:
    """The owner's budget status: from with_budget_use's annotations when the conversation
    was loaded with them (no query), else read now."""
    if not hasattr(conversation, "budget_id"):
        return budget_status(conversation.owner)
    if conversation.budget_id is None:
        return BudgetStatus(budget=None)
    budget = UsageBudget(
        pk=conversation.budget_id,
        user_id=conversation.budget_user_id,
        token_limit=conversation.budget_token_limit,
        money_limit=conversation.budget_money_limit,
        currency=conversation.budget_currency,
    )
    return BudgetStatus(
        budget=budget,
        tokens_used=conversation.budget_tokens_used,
        money_used=conversation.budget_money_used,
    )


def budgets_near_or_over() -> list[BudgetStatus]:
    """Every user at or past the warning share of their budget this month, fullest first."""
    budgets = {b.user_id: b for b in UsageBudget.objects.all()}
    if not budgets:
        return []
    rows = (
        records_in_month(month_start())
        .values("user", "currency")
        .annotate(tokens=Sum(F("prompt_tokens") + F("completion_tokens")), money=Sum("cost"))
    )
    used: dict[int, BudgetStatus] = {}
    for row in rows:
        budget = budgets.get(row["user"]) or budgets.get(None)
        if budget is None:
            continue
        status = used.setdefault(row["user"], BudgetStatus(budget=budget))
        status.tokens_used += row["tokens"] or 0
        if row["currency"] == budget.currency:
            status.money_used += row["money"] or ZERO
    flagged = {pk: s for pk, s in used.items() if s.share >= BUDGET_WARNING_AT}
    for pk, user in get_user_model().objects.in_bulk(list(flagged)).items():
        flagged[pk].user = user
    return sorted(flagged.values(), key=lambda s: s.share, reverse=True)


# --- Per message and per conversation (the chat footer, admin) ---------------------------


def cost_by_message(message_ids: list[int]) -> dict[int, tuple[Decimal, str]]:
    """Cost of each message's upstream calls: one query for a whole page of messages."""
    if not message_ids:
        return {}
    rows = (
        UsageRecord.objects.filter(message_id__in=message_ids)
        .values("message_id", "currency")
        .annotate(cost=Sum("cost"))
    )
    return {row["message_id"]: (row["cost"], row["currency"]) for row in rows}


def _usage_sum(expression, *, per: str, zero=0, **filters):
    """A subquery summing `expression` over the usage records whose `per` is the outer row."""
    return Coalesce(
        Subquery(
            UsageRecord.objects.filter(**{per: OuterRef("pk")}, **filters)
            .order_by()
            .values(per)
            .annotate(total=Sum(expression))
            .values("total")[:1]
        ),
        Value(zero),
    )


TOKENS = F("prompt_tokens") + F("completion_tokens")


def conversations_with_usage(conversations: QuerySet[Conversation]) -> QuerySet[Conversation]:
    """Annotated with message_count, usage_tokens and usage_cost_<currency>, in one query."""
    message_count = Subquery(
        Message.objects.filter(conversation=OuterRef("pk"))
        .order_by()
        .values("conversation")
        .annotate(n=Count("id"))
        .values("n")[:1]
    )
    costs = {
        f"usage_cost_{currency.lower()}": _usage_sum(
            "cost", per="conversation", zero=ZERO, currency=currency
        )
        for currency in Currency.values
    }
    return conversations.annotate(
        message_count=Coalesce(message_count, 0),
        usage_tokens=_usage_sum(TOKENS, per="conversation"),
        **costs,
    )


def messages_with_usage(messages: QuerySet[Message]) -> QuerySet[Message]:
    """Annotated with usage_calls, usage_tokens, usage_cost and usage_currency."""
    return messages.annotate(
        usage_calls=_usage_sum(Value(1), per="message"),
        usage_tokens=_usage_sum(TOKENS, per="message"),
        usage_cost=_usage_sum("cost", per="message", zero=ZERO),
        usage_currency=Subquery(
            UsageRecord.objects.filter(message=OuterRef("pk")).values("currency")[:1]
        ),
        usage_estimated=Exists(UsageRecord.objects.filter(message=OuterRef("pk"), reported=False)),
    )
