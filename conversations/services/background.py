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
    usage_record_create,
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
        outcome.prompt_tokens = sum(estimate_tokens(m["content"]) for m in messages)
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
    try:
        done = asyncio.run(transport.complete_chat(request))
    except ProviderError:
        usage_records_for_retries(count=request.attempts, **call)
        raise
    usage_records_for_retries(count=request.attempts - 1, **call)
    usage_record_create(outcome=_usage_outcome(messages, done), **call)
    return done
