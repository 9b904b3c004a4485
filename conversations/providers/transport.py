"""The provider seam for chat: with embeddings.py and sdk_errors.py beside it, the only
modules that import `openai`.

It turns every provider's streaming quirks into one stream of small typed events
(ContentDelta, ReasoningDelta, Usage, Finish) and SDK/transport errors into chatsite's own
ProviderError subclasses (sdk_errors.py). The SDK still owns auth, base URLs and retries
before a stream starts (honouring Retry-After); once a stream has started nothing is
retried. Embeddings (embeddings.py) go through a synchronous client, for worker threads and
Celery tasks, and fail in the same vocabulary.

Chunks are read as raw SSE bytes, split into lines here and parsed with json.loads: building
the SDK's model object per chunk costs ~10x more, and the SDK's iter_lines (text decoding and
line splitting through four nested async generators) was a fifth of a busy server's CPU.

The SDK's public API is used everywhere but in reading a stream's body, where its cost was
measured too high (above). There it reads private names of the SDK's aiohttp transport,
and tests/test_providers_transport.py pins each:
- `openai._vendor.httpx_aiohttp.transport.map_aiohttp_exceptions`: aiohttp's errors mapped
  as the transport maps them, so a body read straight from aiohttp fails in the same error
  vocabulary as one read through the SDK (a stall still ends as ProviderTimeout);
- `http_response.stream._stream._aiohttp_response` (in _body_chunks): the aiohttp response
  under httpx2's wrappers, read directly and handed to the read-timeout watch. Were it
  renamed, the body would be read through httpx2 again: slower, never wrong.
"""

import asyncio
import json
import weakref
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx2
import openai
from aiohttp import ClientResponse
from django.conf import settings
from django.utils.translation import gettext_noop
from openai._vendor.httpx_aiohttp.transport import map_aiohttp_exceptions

from conversations.errors import (
    ProviderError,
    ProviderRejected,
)
from conversations.observability import metrics
from conversations.providers import credit, sdk_errors, timeouts


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
    json_mode: bool = False
    # Provider-specific body fields (thinking switch, max_completion_tokens), from
    # conversations.providers.profiles; sent as they are.
    body_fields: dict = field(default_factory=dict)
    include_usage: bool = True
    # HTTP requests sent for this request so far, the SDK's retries included; written by
    # stream_chat so the ledger can record every upstream call, failed attempts too.
    attempts: int = 0


# Pooled clients per event loop (an httpx pool is bound to its loop), then per endpoint.
_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict]" = weakref.WeakKeyDictionary()


# Every stream of a busy process may be to one endpoint: keep them all alive between
# replies (the SDK keeps 100), or each reply past the 100th pays a new connection (and TLS
# handshake) to the provider.
CONNECTION_LIMITS = httpx2.Limits(max_connections=1000, max_keepalive_connections=1000)


# A whole (non-streamed) response that is not what the protocol says it is.
MALFORMED_RESPONSE = gettext_noop("The provider sent a malformed response.")

# How long the end of a body may take to arrive after [DONE] before the connection is closed.
DRAIN_SECONDS = 1.0


def _new_client(base_url: str, api_key: str) -> openai.AsyncOpenAI:
    """A client on the SDK's aiohttp transport (openai[aiohttp]): measured on this app's
    streams it costs half the CPU of the default httpx one, per request and per chunk."""
    timeout = httpx2.Timeout(
        settings.PROVIDER_READ_TIMEOUT, connect=settings.PROVIDER_CONNECT_TIMEOUT
    )
    return openai.AsyncOpenAI(
        api_key=api_key,
        base_url=base_url,
        max_retries=settings.PROVIDER_MAX_RETRIES,
        timeout=timeout,
        http_client=openai.DefaultAioHttpClient(
            timeout=timeout,
            limits=CONNECTION_LIMITS,
            event_hooks={
                "response": [
                    credit.refuse_retry_when_out_of_credit,
                    metrics.upstream_responded_async,
                ]
            },
        ),
    )


def _client(base_url: str, api_key: str) -> openai.AsyncOpenAI:
    """The server loop's long-lived client for an endpoint, so connections are reused."""
    per_loop = _clients.setdefault(asyncio.get_running_loop(), {})
    client = per_loop.get((base_url, api_key))
    if client is None:
        client = per_loop[(base_url, api_key)] = _new_client(base_url, api_key)
    return client


def _request_options(request: ChatRequest) -> dict:
    # The history goes in extra_body, which the SDK sends as it is: as a typed argument it is
    # walked message by message against the SDK's TypedDicts (~0.1 ms each, on the event
    # loop), which for a long conversation stalls every other stream in the process.
    options: dict = {
        "model": request.model,
        "messages": [],
        "extra_body": {**request.body_fields, "messages": request.messages},
        "stream": True,
    }
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


async def stream_chat(request: ChatRequest) -> AsyncGenerator[StreamEvent, None]:
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
            request.attempts += response.retries_taken + 1
            payloads = _sse_data(response.http_response)
            async for payload in payloads:
                if payload == b"[DONE]":
                    await _read_to_the_end(payloads)
                    return
                events = _parse_chunk(json.loads(payload.decode()))
                started = started or bool(events)
                for event in events:
                    yield event
    except (openai.APIError, httpx2.TransportError) as exc:
        raise _provider_error(exc, request, started=started) from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ProviderRejected(gettext_noop("The provider sent a malformed stream.")) from None


async def _read_to_the_end(payloads: AsyncIterator[bytes]) -> None:
    """Read what follows [DONE] up to the end of the body, as the SDK does: a connection
    closed before its body's last bytes arrived cannot go back to the pool, and each reply
    would open a new one. The reply is whole already, so this is brief and never fails it."""
    try:
        async with asyncio.timeout(DRAIN_SECONDS):
            async for _ in payloads:
                pass
    except Exception:  # a slow or broken end of body: the connection is closed instead
        pass


async def _sse_data(http_response: httpx2.Response) -> AsyncIterator[bytes]:
    """The payload of each `data:` line, as bytes."""
    pending = b""
    chunks, aiohttp_response = _body_chunks(http_response)
    watched = timeouts.watching(aiohttp_response, settings.PROVIDER_READ_TIMEOUT)
    # aiohttp's errors mapped as the transport itself maps them: one error vocabulary.
    with map_aiohttp_exceptions(), watched:
        async for chunk in chunks:
            lines = (pending + chunk).split(b"\n")
            pending = lines.pop()  # the start of a line the next chunk completes
            for line in lines:
                if line.startswith(b"data:"):
                    yield line[5:].strip()
    if pending.startswith(b"data:"):  # a last line without its newline
        yield pending[5:].strip()


def _body_chunks(
    http_response: httpx2.Response,
) -> tuple[AsyncIterator[bytes], ClientResponse | None]:
    """The body as it arrives, and the aiohttp response it is read from, if it is. An
    uncompressed body on the aiohttp transport is read from aiohttp directly: httpx2's four
    wrapping async generators (aiter_bytes, aiter_raw, the bound stream, the transport's
    stream) cost more per chunk than the parsing does."""
    transport_stream = getattr(http_response.stream, "_stream", None)
    aiohttp_response = getattr(transport_stream, "_aiohttp_response", None)
    encoding = http_response.headers.get("content-encoding", "identity").lower()
    if aiohttp_response is None or encoding != "identity":
        return http_response.aiter_bytes(), None  # httpx2 decompresses; aiohttp's timer stays
    return aiohttp_response.content.iter_any(), aiohttp_response


def _count_failed_attempts(request: ChatRequest, exc: Exception) -> None:
    """An SDK error before the stream began ends a run of attempts: the last one plus the
    retries the SDK took, which it numbers in the x-stainless-retry-count header."""
    if isinstance(exc, openai.APIError):
        retries = exc.request.headers.get("x-stainless-retry-count", "0")
        request.attempts += (int(retries) if retries.isdigit() else 0) + 1


def _provider_error(exc: Exception, request: ChatRequest, *, started: bool) -> ProviderError:
    """Count the failed attempts, then say what went wrong in our own terms."""
    _count_failed_attempts(request, exc)
    return sdk_errors.mapped_error(
        exc, api_key=request.api_key, started=started, stream_options=request.include_usage
    )


@dataclass(frozen=True)
class Completion:
    """A whole (non-streamed) reply, for background calls such as summaries."""

    text: str
    reasoning: str
    finish_reason: str
    usage: Usage | None


async def complete_chat(request: ChatRequest) -> Completion:
    """One non-streamed call on a client of its own, closed afterwards: background jobs run
    each call in a short-lived event loop, so a pooled client would outlive its loop."""
    options: dict[str, Any] = {"model": request.model, "messages": request.messages}
    for name in ("temperature", "max_tokens"):
        if (value := getattr(request, name)) is not None:
            options[name] = value
    if request.body_fields:  # the profile's (thinking off, max_completion_tokens)
        options["extra_body"] = dict(request.body_fields)
    async with _new_client(request.base_url, request.api_key) as client:
        try:
            response = await client.chat.completions.with_raw_response.create(**options)
            request.attempts += response.retries_taken + 1
            data = json.loads(response.text)
        except (openai.APIError, httpx2.TransportError) as exc:
            raise _provider_error(exc, request, started=False) from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            data = None
    if not isinstance(data, dict):
        # A provider error like any other, so the attempt is still a ledger record (the
        # endpoint may have billed it) and the job's retry policy applies.
        raise ProviderRejected(MALFORMED_RESPONSE)
    choice = (data.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    return Completion(
        text=message.get("content") or "",
        reasoning=message.get("reasoning_content") or message.get("reasoning") or "",
        finish_reason=choice.get("finish_reason") or "",
        usage=_usage(data["usage"]) if data.get("usage") else None,
    )


@dataclass(frozen=True)
class ModelListing:
    """What an endpoint's /models said: its model ids, or why it could not be asked."""

    names: list[str]
    # "unreachable", "key_refused" or "no_answer" (discovery's timeout); "" when it answered.
    problem: str = ""
    detail: str = ""


async def list_models(base_url: str, api_key: str) -> ModelListing:
    """Model ids the endpoint lists at /models (none when it offers no listing; a problem
    when it cannot be reached or refuses the key)."""
    async with _new_client(base_url, api_key) as client:
        try:
            page = await client.models.list()
        except openai.APIStatusError as exc:
            if exc.status_code in (401, 403):
                return ModelListing([], "key_refused", f"HTTP {exc.status_code}")
            return ModelListing([])  # no listing offered: nothing wrong with the endpoint
        except (openai.APIError, httpx2.HTTPError) as exc:
            return ModelListing([], "unreachable", type(exc).__name__)
    return ModelListing(sorted(model.id for model in page.data))
