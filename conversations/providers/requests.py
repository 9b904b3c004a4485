"""The one request builder: every model call (a reply, a summary, a title) is built here,
from the catalogue row, the endpoint's credentials and the provider's profile."""

from typing import Any

from conversations.errors import ProviderError
from conversations.models import ChatModel, Conversation
from conversations.providers import profiles
from conversations.providers.catalogue import Credentials, provider_credentials
from conversations.providers.transport import ChatRequest


def _request(
    chat_model: ChatModel, credentials: Credentials, messages: list[dict], **fields: Any
) -> ChatRequest:
    return ChatRequest(
        base_url=credentials.base_url,
        api_key=credentials.api_key,
        model=chat_model.name,
        messages=messages,
        provider_slug=chat_model.provider.slug,
        **fields,
    )


def reply_request(
    *,
    chat_model: ChatModel,
    conversation: Conversation,
    credentials: Credentials,
    messages: list[dict],
    continuing_from: str | None = None,
) -> ChatRequest:
    """A streamed reply, with the conversation's settings as this provider takes them.
    `continuing_from`: the answer so far of a reply its length limit cut off, which the
    request asks to go on from, in the provider's continuation shape (profiles)."""
    sampling = profiles.sampling(chat_model, conversation)
    request = _request(
        chat_model,
        credentials,
        messages,
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        max_tokens=sampling.max_tokens,
        stop=sampling.stop,
        json_mode=profiles.uses_json_mode(chat_model, conversation),
        body_fields=profiles.request_fields(chat_model, conversation),
        include_usage=chat_model.provider.stream_usage_supported is not False,
    )
    if continuing_from is not None:
        shape = profiles.continuation(
            chat_model,
            messages=messages,
            partial=continuing_from,
            base_url=request.base_url,
            body_fields=request.body_fields,
        )
        request.messages, request.base_url = shape.messages, shape.base_url
        request.body_fields = shape.body_fields
    return request


def background_request(
    *, chat_model: ChatModel, messages: list[dict], max_tokens: int
) -> ChatRequest:
    """A call the user does not wait on (a summary, a title). Raises ProviderError when the
    provider is not configured, for the job's retry policy."""
    credentials = provider_credentials(chat_model.provider)
    if credentials is None:
        raise ProviderError(f"No API key is configured for {chat_model.provider.name}.")
    call = profiles.background_call(chat_model, max_tokens=max_tokens)
    return _request(
        chat_model,
        credentials,
        messages,
        temperature=call.temperature,
        max_tokens=call.max_tokens,
        body_fields=call.body_fields,
    )
