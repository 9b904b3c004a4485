"""Re-pricing on purpose: a model's usage over a period priced again by its dated prices,
and a record of who did it. Nothing else ever changes a usage record's price."""

from datetime import datetime
from decimal import Decimal

from django.contrib.auth.models import User
from django.db import transaction

from conversations.models import ChatModel, Repricing, UsageRecord
from conversations.usage import repricing

FIELDS = ["input_price", "cached_input_price", "output_price", "price", "price_band", "cost"]


def usage_reprice(
    *, chat_model: ChatModel, starts: datetime, ends: datetime, done_by: User
) -> Repricing:
    """Price every record of `chat_model` whose call started in [starts, ends) by the rates
    in force at its start, in one transaction, and record the totals before and after."""
    before: dict[str, Decimal] = {}
    after: dict[str, Decimal] = {}
    count = 0
    with transaction.atomic():
        records = repricing.records_to_reprice(chat_model, starts, ends).select_for_update()
        batch: list[UsageRecord] = []
        for item in repricing.repriced(records, chat_model):
            record, rates = item.record, item.rates
            before[record.currency] = before.get(record.currency, Decimal(0)) + record.cost
            after[record.currency] = after.get(record.currency, Decimal(0)) + item.cost
            record.input_price = rates.input
            record.cached_input_price = rates.cached_input
            record.output_price = rates.output
            record.price_id = rates.price_id
            record.price_band = rates.band
            record.cost = item.cost
            batch.append(record)
            count += 1
            if len(batch) >= repricing.CHUNK:
                UsageRecord.objects.bulk_update(batch, FIELDS)
                batch = []
        UsageRecord.objects.bulk_update(batch, FIELDS)
        return Repricing.objects.create(
            chat_model=chat_model,
            model_name=chat_model.name,
            starts=starts,
            ends=ends,
            done_by=done_by,
            records=count,
            cost_before={c: str(v) for c, v in before.items()},
            cost_after={c: str(v) for c, v in after.items()},
        )
