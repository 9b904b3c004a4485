"""What re-pricing a model's usage over a period would change, before anything is written:
the records it touches and their cost now and after, per currency."""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db.models import QuerySet

from conversations.models import ChatModel, UsageRecord
from conversations.usage import prices

CHUNK = 2000


@dataclass
class Repriced:
    record: UsageRecord
    rates: prices.Rates
    cost: Decimal


@dataclass
class RepricePreview:
    records: int = 0
    changed: int = 0
    before: dict[str, Decimal] = field(default_factory=dict)
    after: dict[str, Decimal] = field(default_factory=dict)


def records_to_reprice(
    chat_model: ChatModel, starts: datetime, ends: datetime
) -> QuerySet[UsageRecord]:
    """The model's records whose calls started in [starts, ends)."""
    return UsageRecord.objects.filter(
        provider_slug=chat_model.provider.slug,
        model_name=chat_model.name,
        created_at__gte=starts,
        created_at__lt=ends,
    ).order_by("id")


def repriced(records: QuerySet[UsageRecord], chat_model: ChatModel) -> Iterator[Repriced]:
    """Each record with the rates in force at its call's start and the cost they give."""
    prices.price_schedule_forget(chat_model.pk)  # the prices as saved, not a process's copy
    for record in records.iterator(chunk_size=CHUNK):
        rates = prices.rates_at(chat_model, record.priced_at or record.created_at)
        cost = rates.cost(
            prompt=record.prompt_tokens,
            cached=record.cached_tokens,
            completion=record.completion_tokens,
        )
        yield Repriced(record, rates, cost)


def reprice_preview(chat_model: ChatModel, starts: datetime, ends: datetime) -> RepricePreview:
    preview = RepricePreview()
    for item in repriced(records_to_reprice(chat_model, starts, ends), chat_model):
        currency = item.record.currency
        preview.records += 1
        preview.changed += item.cost != item.record.cost
        preview.before[currency] = preview.before.get(currency, Decimal(0)) + item.record.cost
        preview.after[currency] = preview.after.get(currency, Decimal(0)) + item.cost
    return preview
