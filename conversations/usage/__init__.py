"""Reads about usage, cost and budgets (a selector package, like `selectors`).

Money is summed per currency and never added across currencies: every figure that holds
money is a `{currency: amount}` mapping. Months are calendar months in the site's time zone.

One module a subject: `months` (the period figures are counted over), `totals` (sums and the
"My usage" month), `charts` (that month's cost chart per currency), `budgets` (limits and
their use), `costs` (per message, per conversation and per branch), `statements` (a month's
accounting rows, for the CSV exports), `prices` (the rates in force at a moment) and
`repricing` (what re-pricing a period would change). Callers import the package and use the
names re-exported below (`usage.budget_status(...)`).
"""

from conversations.usage.budgets import (
    BUDGET_WARNING_AT,
    BudgetStatus,
    budget_for_user,
    budget_status,
    budget_status_of_owner,
    budgets_near_or_over,
    with_budget_use,
)
from conversations.usage.charts import CostChart, cost_charts
from conversations.usage.costs import (
    TOKENS,
    ConversationCosts,
    conversation_costs,
    conversations_with_usage,
    cost_by_message,
    messages_with_usage,
    reported_prompt_tokens,
)
from conversations.usage.counting import with_count_error
from conversations.usage.months import (
    month_after,
    month_from_text,
    month_of,
    month_start,
    records_in_month,
)
from conversations.usage.prices import Rates, band_covers, rates_at, rates_in
from conversations.usage.repricing import RepricePreview, reprice_preview
from conversations.usage.statements import StatementRow, statement_rows, statement_totals
from conversations.usage.totals import (
    ZERO,
    DayBar,
    MonthUsage,
    Totals,
    totals_of,
    usage_month_for_user,
    usage_totals_by,
)
