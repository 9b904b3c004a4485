"""Model calls the user does not wait on (summaries, titles), each billed in the ledger.

Runs in a Celery worker or a job thread, never on the server's event loop: the call gets an
event loop and an HTTP client of its own for its duration.
"""

import asyncio
from typing import Any

from conversations.errors import ProviderError
from conversations.models import ChatModel, Conversation
from conversations.providers import requests, transport
from conversations.services.ledger import (
    CallOutcome,
    usage_record_close,
    usage_record_open,
    usage_records_for_retries,
)
from conversations.tokens import estimate_tokens


def _usage_outcome(messages: list[dict], done: transport.Completion) -> CallOutcome:
    """The call's usage as a ledger outcome: reported, or estimated when absent."""
    usage = done.usage
    outcome = CallOutcome(status="complete", content=done.text, usage_reported=usage is not None)
    if usage is not None:
        outcome.take_reported_usage(usage)
    else:
        outcome.prompt_tokens = _prompt_estimate(messages)
        outcome.completion_tokens = estimate_tokens(done.text)
    return outcome


def background_complete(
    *,
    conversation: Conversation,
    chat_model: ChatModel,
    messages: list[dict],
    kind: str,
    max_tokens: int,
) -> transport.Completion:
    """One non-streamed call; every HTTP request it took is a ledger record (the failed ones
    billed nothing). Raises ProviderError, for the task's retry policy, when it fails."""
    request = requests.background_request(
        chat_model=chat_model, messages=messages, max_tokens=max_tokens
    )
    call: dict[str, Any] = {
        "user_id": conversation.owner_id,
        "conversation": conversation,
        "message": None,
        "chat_model": chat_model,
        "model_name": chat_model.name,
        "kind": kind,
    }
    record = usage_record_open(prompt_estimate=_prompt_estimate(messages), **call)
    try:
        done = asyncio.run(transport.complete_chat(request))
    except ProviderError:
        usage_record_close(record, chat_model=chat_model, outcome=None)
        usage_records_for_retries(count=request.attempts - 1, started_at=record.priced_at, **call)
        raise
    except BaseException:
        # Stopped mid-call (a shutdown, a cancelled job): the provider may have billed the
        # prompt, so the record keeps its estimate, closed and marked as such.
        usage_record_close(record, chat_model=chat_model, outcome=_interrupted(messages))
        raise
    usage_records_for_retries(count=request.attempts - 1, started_at=record.priced_at, **call)
    usage_record_close(record, chat_model=chat_model, outcome=_usage_outcome(messages, done))
    return done


def _prompt_estimate(messages: list[dict]) -> int:
    return sum(estimate_tokens(m["content"]) for m in messages)


def _interrupted(messages: list[dict]) -> CallOutcome:
    return CallOutcome(
        status="interrupted",
        content="",
        prompt_tokens=_prompt_estimate(messages),
        completion_tokens=0,
        usage_reported=False,
    )
