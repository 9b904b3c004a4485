"""Model calls the user does not wait on (summaries, titles), each billed in the ledger.

Runs in a Celery worker or a job thread, never on the server's event loop: the call gets an
event loop and an HTTP client of its own for its duration.
"""

import asyncio
from typing import Any

from conversations import llm, selectors
from conversations.errors import ProviderError
from conversations.models import ChatModel, Conversation
from conversations.services.ledger import usage_record_create, usage_records_for_retries
from conversations.tokens import estimate_tokens


def _request(chat_model: ChatModel, messages: list[dict], max_tokens: int) -> llm.ChatRequest:
    credentials = selectors.provider_credentials(chat_model.provider)
    if credentials is None:
        raise ProviderError(f"No API key is configured for {chat_model.provider.name}.")
    return llm.ChatRequest(
        base_url=credentials.base_url,
        api_key=credentials.api_key,
        model=chat_model.name,
        messages=messages,
        provider_slug=chat_model.provider.slug,
        temperature=0.2,
        max_tokens=max_tokens,
    )


def _usage_outcome(messages: list[dict], done: llm.Completion):
    """The call's usage as a ledger outcome: reported, or estimated when absent."""
    from conversations.services.replies import ReplyOutcome

    usage = done.usage
    outcome = ReplyOutcome(status="complete", content=done.text, usage_reported=usage is not None)
    if usage is not None:
        outcome.prompt_tokens = usage.prompt_tokens
        outcome.completion_tokens = usage.completion_tokens
        outcome.reasoning_tokens = usage.reasoning_tokens
        outcome.cached_tokens = usage.cached_tokens
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
) -> llm.Completion:
    """One non-streamed call; every HTTP request it took is a ledger record (the failed ones
    billed nothing). Raises ProviderError, for the task's retry policy, when it fails."""
    request = _request(chat_model, messages, max_tokens)
    call: dict[str, Any] = {
        "user_id": conversation.owner_id,
        "conversation": conversation,
        "message": None,
        "chat_model": chat_model,
        "model_name": chat_model.name,
        "kind": kind,
    }
    try:
        done = asyncio.run(llm.complete_chat(request))
    except ProviderError:
        usage_records_for_retries(count=request.attempts, **call)
        raise
    usage_records_for_retries(count=request.attempts - 1, **call)
    usage_record_create(outcome=_usage_outcome(messages, done), **call)
    return done
