"""The usage ledger: one record per upstream call, priced at that moment."""

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.utils import timezone

from conversations.models import (
    ChatModel,
    Conversation,
    Currency,
    Message,
    MessageStatus,
    UsageKind,
    UsageRecord,
)
from conversations.observability import metrics
from conversations.providers.presets import EmbeddingPreset
from conversations.providers.transport import Usage
from conversations.tokens import estimate_tokens
from conversations.usage import prices

MILLION = Decimal(1_000_000)
# Errors raised before any stream began: the provider answered with an error status (or
# was never reached), processed nothing and bills nothing, so no tokens are estimated.
REFUSED_ERROR_CODES = frozenset(
    {
        "auth_failed",
        "rate_limited",
        "provider_unavailable",
        "context_too_long",
        "rejected",
        "stream_options_unsupported",
    }
)


@dataclass
class CallOutcome:
    """How one upstream call ended (a reply's stream, a summary, a title): what the ledger
    records of it, and for a reply, its final state."""

    status: str
    content: str
    reasoning: str = ""
    finish_reason: str = ""
    error_code: str = ""
    error_text: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    reasoning_tokens: int | None = None
    cached_tokens: int | None = None
    # False when the provider sent no usage and the token counts are our estimate.
    usage_reported: bool = True
    # False when no request reached the provider (nothing to put in the ledger).
    called_upstream: bool = True
    # HTTP requests made for this reply; all but the last failed and were sent again.
    upstream_attempts: int = 1
    time_to_first_token_ms: int | None = None
    duration_ms: int | None = None
    # How long the model reasoned before answering (None: it did not reason).
    reasoning_ms: int | None = None
    # When the call began: it is priced by the rates in force then (None: when recorded).
    started_at: datetime | None = None
    # A continuation of a reply cut off by its length limit: its content and reasoning are
    # the reply's whole text, its tokens and times only this call's (the reply sums them).
    continues: bool = False

    def take_reported_usage(self, usage: Usage) -> None:
        """The token counts the provider reported for the call. A provider that reasoned
        but did not say how much of the completion that was gets the reasoning text's
        estimate (thinking is what makes a reply expensive: it is shown apart)."""
        self.prompt_tokens = usage.prompt_tokens
        self.completion_tokens = usage.completion_tokens
        self.reasoning_tokens = usage.reasoning_tokens or (
            min(estimate_tokens(self.reasoning), usage.completion_tokens) if self.reasoning else 0
        )
        self.cached_tokens = usage.cached_tokens


def usage_cost(
    *,
    prompt: int,
    cached: int,
    completion: int,
    chat_model: ChatModel | None,
    when: datetime | None = None,
) -> Decimal:
    """Cost of one call starting at `when` (default now): cached prompt tokens at the cached
    rate, the rest at full rate, the rates in force then."""
    rates = prices.rates_at(chat_model, when or timezone.now())
    return rates.cost(prompt=prompt, cached=cached, completion=completion)


def _snapshot(record: UsageRecord) -> prices.Rates:
    """The rates a record was priced with, as it keeps them."""
    return prices.Rates(record.input_price, record.cached_input_price, record.output_price)


def call_refused(outcome: CallOutcome) -> bool:
    """The provider refused the call outright: it is recorded at zero tokens (and the
    reply's own counts agree, reply_finish)."""
    if outcome.usage_reported or outcome.error_code not in REFUSED_ERROR_CODES:
        return False
    if outcome.continues:  # its content is the reply's earlier text: only this call's counts
        return not outcome.completion_tokens
    return outcome.status == MessageStatus.FAILED and not outcome.content and not outcome.reasoning


def _priced(chat_model: ChatModel | None, started_at: datetime | None, **fields) -> UsageRecord:
    """An unsaved record priced as its call started (`started_at`, default now): the
    catalogue's rates in force then, and its currency."""
    provider = chat_model.provider if chat_model else None
    when = started_at or timezone.now()
    rates = prices.rates_at(chat_model, when)
    prompt, cached = fields.get("prompt_tokens", 0), fields.get("cached_tokens", 0)
    completion = fields.get("completion_tokens", 0)
    return UsageRecord(
        provider_slug=provider.slug if provider else "",
        input_price=rates.input,
        cached_input_price=rates.cached_input,
        output_price=rates.output,
        price_id=rates.price_id,
        price_band=rates.band,
        priced_at=when,
        cost=rates.cost(prompt=prompt, cached=cached, completion=completion),
        currency=provider.currency if provider else Currency.USD,
        **fields,
    )


def usage_record_create(
    *,
    user_id: int,
    conversation: Conversation | None,
    message: Message | None,
    chat_model: ChatModel | None,
    model_name: str,
    kind: str,
    outcome: CallOutcome,
    in_flight: bool = False,
) -> UsageRecord:
    """The record of the call that produced (or failed to produce) `outcome`.

    Tokens are what the provider reported; when it reported none they are our estimate and
    the record says so, except for a request the provider refused outright (zero tokens).
    """
    record = _priced(
        chat_model,
        outcome.started_at,
        user_id=user_id,
        conversation=conversation,
        message=message,
        model_name=model_name,
        kind=kind,
        in_flight=in_flight,
        **_outcome_fields(outcome),
    )
    record.save()
    if not in_flight:
        _count(record)
    return record


def _count(record: UsageRecord) -> None:
    """A record's final tokens and cost, into the metrics."""
    metrics.usage_recorded(
        provider=record.provider_slug,
        model=record.model_name,
        kind=record.kind,
        prompt_tokens=record.prompt_tokens,
        completion_tokens=record.completion_tokens,
        cost=record.cost,
        currency=record.currency,
    )


def _outcome_fields(outcome: CallOutcome) -> dict:
    refused = call_refused(outcome)
    return {
        "prompt_tokens": 0 if refused else outcome.prompt_tokens or 0,
        "completion_tokens": 0 if refused else outcome.completion_tokens or 0,
        "reasoning_tokens": 0 if refused else outcome.reasoning_tokens or 0,
        "cached_tokens": 0 if refused else outcome.cached_tokens or 0,
        "reported": refused or outcome.usage_reported,
    }


def usage_record_open(*, prompt_estimate: int, **call: Any) -> UsageRecord:
    """The record of a call about to start (`call` as for usage_record_create), with its
    prompt's estimate: written first, so a process that dies mid-call (killed, or stopped
    past its grace) still leaves the call in the ledger. usage_record_close turns it into
    the call's real record."""
    estimate = CallOutcome(
        status="in_flight", content="", prompt_tokens=prompt_estimate, usage_reported=False
    )
    return usage_record_create(outcome=estimate, in_flight=True, **call)


def usage_record_close(
    record: UsageRecord, *, chat_model: ChatModel | None, outcome: CallOutcome | None
) -> UsageRecord:
    """End an open record: with the call's outcome, or with None for an attempt that failed
    before any reply (zero tokens, like a retried one), priced as when it was opened (its
    snapshot: a call that ends in another price band keeps its start's rates)."""
    fields = (
        _outcome_fields(outcome)
        if outcome is not None
        else {"prompt_tokens": 0, "completion_tokens": 0, "reported": True, "retried": True}
    )
    for name, value in fields.items():
        setattr(record, name, value)
    record.cost = _snapshot(record).cost(
        prompt=record.prompt_tokens,
        cached=record.cached_tokens,
        completion=record.completion_tokens,
    )
    record.in_flight = False
    record.save()
    _count(record)
    return record


def embedding_usage_record_create(
    *,
    user_id: int,
    conversation: Conversation | None,
    preset: EmbeddingPreset,
    prompt_tokens: int,
    reported: bool = True,
) -> UsageRecord:
    """The record of an embeddings call through a provider (recall's index or query):
    input tokens only, priced by the preset, or by the catalogue's dated prices when the
    admin keeps them for this model (a model row of the same provider and name)."""
    now = timezone.now()
    rates = _embedding_rates(preset, now)
    cost = (Decimal(prompt_tokens) * rates.input / MILLION).quantize(Decimal("0.00000001"))
    record = UsageRecord.objects.create(
        user_id=user_id,
        conversation=conversation,
        provider_slug=preset.provider_slug,
        model_name=preset.name,
        kind=UsageKind.EMBEDDING,
        prompt_tokens=prompt_tokens,
        reported=reported,
        input_price=rates.input,
        price_id=rates.price_id,
        price_band=rates.band,
        priced_at=now,
        cost=cost,
        currency=preset.currency,
    )
    _count(record)
    return record


def _embedding_rates(preset: EmbeddingPreset, when: datetime) -> prices.Rates:
    """The preset's price, unless the catalogue has dated prices for the same model."""
    listed = (
        ChatModel.objects.filter(provider__slug=preset.provider_slug, name=preset.name)
        .select_related("provider")
        .first()
    )
    rates = prices.rates_at(listed, when) if listed is not None else None
    if rates is None or rates.price_id is None:
        return prices.Rates(preset.input_price, Decimal(0), Decimal(0))
    return rates


def usage_records_for_retries(
    *,
    count: int,
    user_id: int,
    conversation: Conversation | None,
    message: Message | None,
    chat_model: ChatModel | None,
    model_name: str,
    kind: str,
    started_at: datetime | None = None,
) -> list[UsageRecord]:
    """One zero-token record per attempt that failed and was sent again (a 429 or 5xx the
    SDK retried, a stream option the endpoint rejected): calls that were made, billed nothing."""
    records = [
        _priced(
            chat_model,
            started_at,
            user_id=user_id,
            conversation=conversation,
            message=message,
            model_name=model_name,
            kind=kind,
            retried=True,
        )
        for _ in range(max(count, 0))
    ]
    return UsageRecord.objects.bulk_create(records)
