"""Usage per message and per conversation: the cost shown in a reply's footer, a chat's and
its branch's cost in the header, the prompt tokens a provider reported for a reply, and the
annotations behind the admin's changelists (message counts, tokens, cost per currency)."""

from dataclasses import dataclass, field
from decimal import Decimal

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from conversations.models import Conversation, Currency, Message, UsageKind, UsageRecord
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


@dataclass(frozen=True)
class ConversationCosts:
    """What a conversation cost, per currency: all of it (every branch, and the summaries,
    titles and embeddings made for it), and the calls of the replies on the branch on
    screen. A currency appears once a call in it was made."""

    total: dict[str, Decimal] = field(default_factory=dict)
    branch: dict[str, Decimal] = field(default_factory=dict)


def conversation_costs(
    conversation: Conversation, *, branch_ids: list[int] | None
) -> ConversationCosts:
    """The ledger's sums for `conversation`, in one query. `branch_ids`: the messages on the
    branch on screen; None when every message is on it (the conversation has no branches),
    which spares reading the path."""
    on_branch = Q(message__isnull=False) if branch_ids is None else Q(message_id__in=branch_ids)
    rows = (
        UsageRecord.objects.filter(conversation=conversation)
        .values("currency")
        .annotate(
            total=Sum("cost"),
            branch=Coalesce(Sum("cost", filter=on_branch), Value(ZERO)),
            branch_calls=Count("id", filter=on_branch),
        )
        .order_by("currency")
    )
    costs = ConversationCosts()
    for row in rows:
        costs.total[row["currency"]] = row["total"]
        if row["branch_calls"]:
            costs.branch[row["currency"]] = row["branch"]
    return costs


def reported_prompt_tokens(message_id: int) -> int | None:
    """The prompt tokens the provider reported for a reply's request (its last attempt);
    None when it reported none: the ledger holds our estimate, or nothing was billed."""
    row = (
        UsageRecord.objects.filter(
            message_id=message_id, kind=UsageKind.CHAT, retried=False, in_flight=False
        )
        .order_by("-id")
        .values_list("prompt_tokens", "reported")
        .first()
    )
    if row is None or not row[1] or not row[0]:
        return None
    return row[0]


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
