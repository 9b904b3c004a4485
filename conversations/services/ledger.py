"""The usage ledger: one record per upstream call, priced at that moment."""

from decimal import Decimal
from typing import TYPE_CHECKING

from conversations.models import ChatModel, Conversation, Message, UsageRecord

if TYPE_CHECKING:
    from conversations.services.replies import ReplyOutcome

MILLION = Decimal(1_000_000)


def usage_cost(
    *, prompt: int, cached: int, completion: int, chat_model: ChatModel | None
) -> Decimal:
    """Cost of one call: cached prompt tokens at the cached price, the rest at full price."""
    if chat_model is None:
        return Decimal(0)
    uncached = max(prompt - cached, 0)
    total = (
        uncached * chat_model.input_price
        + cached * chat_model.cached_input_price
        + completion * chat_model.output_price
    )
    return (total / MILLION).quantize(Decimal("0.00000001"))


def usage_record_create(
    *,
    user_id: int,
    conversation: Conversation | None,
    message: Message | None,
    chat_model: ChatModel | None,
    model_name: str,
    kind: str,
    outcome: "ReplyOutcome",
) -> UsageRecord:
    prompt = outcome.prompt_tokens or 0
    cached = outcome.cached_tokens or 0
    completion = outcome.completion_tokens or 0
    provider = chat_model.provider if chat_model else None
    return UsageRecord.objects.create(
        user_id=user_id,
        conversation=conversation,
        message=message,
        provider_slug=provider.slug if provider else "",
        model_name=model_name,
        kind=kind,
        prompt_tokens=prompt,
        completion_tokens=completion,
        reasoning_tokens=outcome.reasoning_tokens or 0,
        cached_tokens=cached,
        reported=outcome.usage_reported,
        input_price=chat_model.input_price if chat_model else 0,
        cached_input_price=chat_model.cached_input_price if chat_model else 0,
        output_price=chat_model.output_price if chat_model else 0,
        cost=usage_cost(prompt=prompt, cached=cached, completion=completion, chat_model=chat_model),
        currency=provider.currency if provider else "USD",
    )
