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
) -> ChatRequest:
    """A streamed reply, with the conversation's settings as this provider takes them."""
    sampling = profiles.sampling(chat_model, conversation)
    return _request(
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
