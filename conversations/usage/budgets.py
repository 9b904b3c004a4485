"""Monthly budgets: whose budget applies, how much of it a user has used (read on its own,
or annotated onto the query that loads a conversation for a send), and which users are near
or over theirs."""

from dataclasses import dataclass
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import (
    BigIntegerField,
    CharField,
    DecimalField,
    F,
    Field,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce
from django.utils.translation import gettext, pgettext

from conversations.models import Conversation, UsageBudget, UsageRecord
from conversations.usage.months import month_after, month_start, records_in_month
from conversations.usage.totals import ZERO

# Share of a limit at which the user is warned; at 1.0 sending is refused.
BUDGET_WARNING_AT = 0.8


def budget_for_user(user: User) -> UsageBudget | None:
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
    user: User | None = None

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


def budget_status(user: User) -> BudgetStatus:
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
_BUDGET_FIELDS: dict[str, Field] = {
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
    # The `budget_*` attributes are with_budget_use's annotations, unknown to the stubs.
    budget = UsageBudget(
        pk=conversation.budget_id,
        user_id=conversation.budget_user_id,  # type: ignore[attr-defined]
        token_limit=conversation.budget_token_limit,  # type: ignore[attr-defined]
        money_limit=conversation.budget_money_limit,  # type: ignore[attr-defined]
        currency=conversation.budget_currency,  # type: ignore[attr-defined]
    )
    return BudgetStatus(
        budget=budget,
        tokens_used=conversation.budget_tokens_used,  # type: ignore[attr-defined]
        money_used=conversation.budget_money_used,  # type: ignore[attr-defined]
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
