"""The provider seam: the only module that imports `openai`.

It turns every provider's streaming quirks into one stream of small typed events
(ContentDelta, ReasoningDelta, Usage, Finish) and SDK/transport errors into chatsite's own
ProviderError subclasses. The SDK still owns auth, base URLs and retries before a stream
starts (honouring Retry-After); once a stream has started nothing is retried.

Chunks are read as raw SSE lines and parsed with json.loads: building the SDK's model object
per chunk costs ~10x more and a reply can have thousands of chunks.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx2
import openai
from django.conf import settings

from conversations.errors import (
    ContextTooLong,
    ProviderAuthFailed,
    ProviderConnectionLost,
    ProviderError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    StreamOptionsUnsupported,
)


@dataclass(frozen=True, slots=True)
class ContentDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int = 0
    cached_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Finish:
    reason: str


StreamEvent = ContentDelta | ReasoningDelta | Usage | Finish


@dataclass
class ChatRequest:
    """Everything one chat-completions call needs, already resolved from the catalogue."""

    base_url: str
    api_key: str
    model: str
    messages: list[dict]
    provider_slug: str = ""
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] = field(default_factory=list)
    thinking: bool = False
    thinking_budget: int | None = None
    json_mode: bool = False
    include_usage: bool = True


_clients: dict[tuple, openai.AsyncOpenAI] = {}


def _client(base_url: str, api_key: str) -> openai.AsyncOpenAI:
    """One pooled client per endpoint and event loop (an httpx pool is bound to its loop)."""
    loop = asyncio.get_running_loop()
    key = (id(loop), base_url, api_key)
    client = _clients.get(key)
    if client is None:
        client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            max_retries=settings.PROVIDER_MAX_RETRIES,
            timeout=httpx2.Timeout(
                settings.PROVIDER_READ_TIMEOUT, connect=settings.PROVIDER_CONNECT_TIMEOUT
            ),
        )
        _clients[key] = client
    return client


def _request_options(request: ChatRequest) -> dict:
    options: dict = {"model": request.model, "messages": request.messages, "stream": True}
    if request.include_usage:
        options["stream_options"] = {"include_usage": True}
    for name in ("temperature", "top_p", "max_tokens"):
        value = getattr(request, name)
        if value is not None:
            options[name] = value
    if request.stop:
        options["stop"] = request.stop
    if request.json_mode:
        options["response_format"] = {"type": "json_object"}
    return options


def _parse_chunk(data: dict) -> list[StreamEvent]:
    events: list[StreamEvent] = []
    for choice in data.get("choices") or []:
        delta = choice.get("delta") or {}
        # DeepSeek and DashScope send reasoning as delta.reasoning_content; some local
        # servers (vLLM, Ollama) call it delta.reasoning.
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if reasoning:
            events.append(ReasoningDelta(reasoning))
        if content := delta.get("content"):
            events.append(ContentDelta(content))
        # A chunk can carry text and finish_reason together: the text is kept above.
        if reason := choice.get("finish_reason"):
            events.append(Finish(reason))
    if usage := data.get("usage"):
        events.append(_usage(usage))
    return events


def _usage(usage: dict) -> Usage:
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    # DeepSeek reports cache hits as prompt_cache_hit_tokens, others in the details object.
    cached = prompt_details.get("cached_tokens") or usage.get("prompt_cache_hit_tokens") or 0
    return Usage(
        prompt_tokens=usage.get("prompt_tokens") or 0,
        completion_tokens=usage.get("completion_tokens") or 0,
        reasoning_tokens=completion_details.get("reasoning_tokens") or 0,
        cached_tokens=cached,
    )


async def stream_chat(request: ChatRequest) -> AsyncIterator[StreamEvent]:
    """Stream one reply as events. Raises a ProviderError subclass on failure.

    Closing the iterator (or cancelling the task reading it) closes the HTTP connection, so
    the provider sees the client go and stops generating.
    """
    client = _client(request.base_url, request.api_key)
    started = False
    try:
        async with client.chat.completions.with_streaming_response.create(
            **_request_options(request)
        ) as response:
            async for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    return
                events = _parse_chunk(json.loads(payload))
                started = started or bool(events)
                for event in events:
                    yield event
    except openai.APIStatusError as exc:
        raise _status_error(exc, request) from None
    except (openai.APITimeoutError, httpx2.TimeoutException):
        raise ProviderTimeout() from None
    except (openai.APIConnectionError, httpx2.TransportError) as exc:
        if started:
            raise ProviderConnectionLost() from None
        raise ProviderUnavailable(f"Could not reach the provider ({type(exc).__name__}).") from None
    except json.JSONDecodeError:
        raise ProviderRejected("The provider sent a malformed stream.") from None


def _error_detail(exc: openai.APIStatusError) -> tuple[str, str]:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error", body) if isinstance(body.get("error", body), dict) else {}
    return str(error.get("code") or ""), str(error.get("message") or exc.message or "")


def _status_error(exc: openai.APIStatusError, request: ChatRequest) -> ProviderError:
    code, message = _error_detail(exc)
    status = exc.status_code
    if status in (401, 403):
        return ProviderAuthFailed()
    if status == 429:
        return ProviderRateLimited()
    if status >= 500:
        return ProviderUnavailable()
    lowered = f"{code} {message}".lower()
    if "context" in lowered and ("length" in lowered or "long" in lowered):
        return ContextTooLong()
    if request.include_usage and "stream_options" in lowered:
        return StreamOptionsUnsupported()
    return ProviderRejected(f"The provider refused the request: {message[:300]}".strip())


async def list_models(base_url: str, api_key: str) -> list[str]:
    """Model ids the endpoint lists at /models (empty when it offers none)."""
    client = _client(base_url, api_key)
    try:
        page = await client.models.list()
    except (openai.APIError, httpx2.HTTPError):
        return []
    return sorted(model.id for model in page.data)
