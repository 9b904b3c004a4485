"""Usage per message and per conversation: the cost shown in a reply's footer, and the
annotations behind the admin's changelists (message counts, tokens, cost per currency)."""

from decimal import Decimal

from django.db.models import Count, Exists, F, OuterRef, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from conversations.models import Conversation, Currency, Message, UsageRecord
from conversations.usage.totals import ZERO


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
