"""The rates in force for a model at a moment: its dated price and, inside it, the time band
that covers the moment (conversations/models/pricing.py says how prices are kept).

Every ledger record asks this once, so a model's schedule (its dated rows and their bands,
two queries) is kept per process for SCHEDULE_SECONDS: an admin's edit reaches every process
within that, and the process that saved it at once (price_schedule_forget).
"""

import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from conversations.models import ChatModel, ModelPrice, PriceBand

SCHEDULE_SECONDS = 10.0
MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class Rates:
    """Per million tokens; `band` names the time band ("" for a price's base rates) and
    `price_id` the dated row (None: the model's own base price)."""

    input: Decimal
    cached_input: Decimal
    output: Decimal
    band: str = ""
    price_id: int | None = None

    def cost(self, *, prompt: int, cached: int, completion: int) -> Decimal:
        """Cached prompt tokens at the cached rate, the rest of the prompt at the input rate."""
        uncached = max(prompt - cached, 0)
        total = uncached * self.input + cached * self.cached_input + completion * self.output
        return (total / MILLION).quantize(Decimal("0.00000001"))


NO_RATES = Rates(Decimal(0), Decimal(0), Decimal(0))


@dataclass(frozen=True)
class _Dated:
    effective_from: datetime
    rates: Rates
    bands: tuple[PriceBand, ...]


_schedules: dict[int, tuple[float, list[_Dated]]] = {}
_schedules_lock = threading.Lock()


def base_rates(chat_model: ChatModel) -> Rates:
    return Rates(chat_model.input_price, chat_model.cached_input_price, chat_model.output_price)


def rates_at(chat_model: ChatModel | None, when: datetime) -> Rates:
    """What a call of `chat_model` starting at `when` is charged per million tokens."""
    if chat_model is None:
        return NO_RATES
    return _pick(chat_model, _schedule(chat_model.pk), when)


def _pick(chat_model: ChatModel, schedule: list[_Dated], when: datetime) -> Rates:
    dated = next((d for d in schedule if d.effective_from <= when), None)
    if dated is None:
        return base_rates(chat_model)
    for band in dated.bands:
        if band_covers(band, when):
            return Rates(
                band.input_price,
                band.cached_input_price,
                band.output_price,
                band=band.label,
                price_id=dated.rates.price_id,
            )
    return dated.rates


def rates_in(chat_model: ChatModel, rows: list[ModelPrice], when: datetime) -> Rates:
    """rates_at over dated rows already read (with their bands prefetched): a list page of
    models in a fixed number of queries."""
    schedule = [_dated(row) for row in sorted(rows, key=lambda r: r.effective_from, reverse=True)]
    return _pick(chat_model, schedule, when)


def band_covers(band: PriceBand, when: datetime) -> bool:
    """`when` falls in the band's hours, on one of its weekdays, in its time zone. A band
    running past midnight belongs to the weekday it starts on."""
    local = when.astimezone(ZoneInfo(band.time_zone))
    now, starts, ends = local.time(), band.starts, band.ends
    if starts == ends:
        started_on = local
    elif starts < ends:
        if not starts <= now < ends:
            return False
        started_on = local
    elif now >= starts:
        started_on = local
    elif now < ends:
        started_on = local - timedelta(days=1)
    else:
        return False
    return str(started_on.isoweekday()) in band.weekdays


def price_schedule_forget(chat_model_id: int | None = None) -> None:
    """Drop this process's copy of a model's schedule (every model's with None)."""
    with _schedules_lock:
        if chat_model_id is None:
            _schedules.clear()
        else:
            _schedules.pop(chat_model_id, None)


def _schedule(chat_model_id: int) -> list[_Dated]:
    """The model's dated rows, newest first, each with its bands."""
    now = time.monotonic()
    with _schedules_lock:
        kept = _schedules.get(chat_model_id)
        if kept is not None and now - kept[0] < SCHEDULE_SECONDS:
            return kept[1]
    rows = ModelPrice.objects.filter(chat_model_id=chat_model_id).prefetch_related("bands")
    schedule = [_dated(row) for row in rows.order_by("-effective_from")]
    with _schedules_lock:
        _schedules[chat_model_id] = (now, schedule)
    return schedule


def _dated(row: ModelPrice) -> _Dated:
    return _Dated(
        effective_from=row.effective_from,
        rates=Rates(row.input_price, row.cached_input_price, row.output_price, price_id=row.pk),
        bands=tuple(row.bands.all()),
    )
