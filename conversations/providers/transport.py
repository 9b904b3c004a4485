"""The provider seam: the only module that imports `openai`.

It turns every provider's streaming quirks into one stream of small typed events
(ContentDelta, ReasoningDelta, Usage, Finish) and SDK/transport errors into chatsite's own
ProviderError subclasses. The SDK still owns auth, base URLs and retries before a stream
starts (honouring Retry-After); once a stream has started nothing is retried. Embeddings
(`embed_texts`) go through a synchronous client, for worker threads and Celery tasks, and
fail in the same vocabulary.

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

import array
import asyncio
import base64
import binascii
import json
import os
import threading
import weakref
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpcore2
import httpx2
import openai
from aiohttp import ClientResponse
from django.conf import settings
from django.utils.translation import gettext_noop
from openai._vendor.httpx_aiohttp.transport import map_aiohttp_exceptions

from chatsite.logging import MASK, mask_secrets
from conversations.errors import (
    REFUSED_WITH_DETAIL,
    UNREACHABLE,
    ContextTooLong,
    ProviderAuthFailed,
    ProviderConnectionLost,
    ProviderError,
    ProviderOutOfCredit,
    ProviderRateLimited,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    StreamOptionsUnsupported,
)
from conversations.observability import metrics
from conversations.providers import credit, timeouts
from conversations.providers.catalogue import Credentials


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


def _provider_error(exc: Exception, request: ChatRequest, *, started: bool) -> ProviderError:
    """Count the failed attempts, then say what went wrong in our own terms."""
    _count_failed_attempts(request, exc)
    return _mapped_error(
        exc, api_key=request.api_key, started=started, stream_options=request.include_usage
    )


def _mapped_error(
    exc: Exception, *, api_key: str, started: bool = False, stream_options: bool = False
) -> ProviderError:
    """An SDK or transport error in our own terms, for chat and embedding calls alike."""
    if isinstance(exc, openai.APIStatusError):
        return _status_error(exc, api_key=api_key, stream_options=stream_options)
    # No status came: the response hook counted nothing, so the error is counted here.
    timed_out = _timed_out(exc)
    metrics.upstream_failed(
        url=_request_url(exc), status_class="timeout" if timed_out else "connection"
    )
    if timed_out:
        return ProviderTimeout()
    if started:
        return ProviderConnectionLost()
    return ProviderUnavailable(UNREACHABLE % {"detail": type(exc).__name__})


def _request_url(exc: Exception) -> object:
    try:
        return exc.request.url  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):  # httpx2 raises when no request was set
        return ""


def _timed_out(exc: BaseException) -> bool:
    """A timeout, judged by the first error under the SDK's and httpx2's wrappers: the
    aiohttp transport reports every failed connection (a refusal, a server hanging up) as
    an httpx2.ConnectTimeout. Under the sync client's httpx2 transport (embeddings) that
    first error is httpcore2's, whose timeouts are timeouts."""
    cause: BaseException | None = exc
    while isinstance(cause, openai.APIError | httpx2.HTTPError):
        cause = cause.__cause__
    if cause is None:
        return isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException)
    return isinstance(cause, TimeoutError | httpcore2.TimeoutException)


def _count_failed_attempts(request: ChatRequest, exc: Exception) -> None:
    """An SDK error before the stream began ends a run of attempts: the last one plus the
    retries the SDK took, which it numbers in the x-stainless-retry-count header."""
    if isinstance(exc, openai.APIError):
        retries = exc.request.headers.get("x-stainless-retry-count", "0")
        request.attempts += (int(retries) if retries.isdigit() else 0) + 1


def _status_error(
    exc: openai.APIStatusError, *, api_key: str, stream_options: bool = False
) -> ProviderError:
    """`stream_options`: the request asked for a usage chunk, which the endpoint may refuse."""
    code, error_type, message = credit.error_fields(exc.body)
    message = message or exc.message or ""
    status = exc.status_code
    if credit.is_out_of_credit(status, code, error_type, message):
        return ProviderOutOfCredit()
    if status in (401, 403):
        return ProviderAuthFailed()
    if status == 429:
        return ProviderRateLimited()
    if status >= 500:
        return ProviderUnavailable()
    lowered = f"{code} {message}".lower()
    if "context" in lowered and ("length" in lowered or "long" in lowered):
        return ContextTooLong()
    if stream_options and "stream_options" in lowered:
        return StreamOptionsUnsupported()
    # Some providers echo the key in their error text; this text is saved and shown.
    message = mask_secrets(message)
    if len(api_key or "") >= 4:
        message = message.replace(api_key, MASK)
    return ProviderRejected((REFUSED_WITH_DETAIL % {"detail": message[:300]}).strip())


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


# --- Embeddings ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EmbeddingResult:
    """The vectors of one embeddings call, one per input text and in the inputs' order."""

    vectors: list[list[float]]
    prompt_tokens: int
    # HTTP requests sent, the SDK's retries included (as ChatRequest.attempts).
    attempts: int = 1
    # False: the endpoint sent no usage (some local servers), and prompt_tokens is 0.
    usage_reported: bool = True


# Sync clients, one per endpoint (and retry count, which a client is built with): embedding
# calls come from worker threads and Celery tasks, which have no event loop. httpx2's pool is
# thread-safe, so every thread of a process shares one client's connections.
_sync_clients: dict[tuple[str, str, int], openai.OpenAI] = {}
_sync_clients_lock = threading.Lock()


def _forget_sync_clients() -> None:
    """A forked child (a Celery worker) opens its own connections: a socket shared with the
    parent would carry both processes' requests. The lock is new too, in case another
    thread held it at the fork."""
    global _sync_clients_lock
    _sync_clients.clear()
    _sync_clients_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_sync_clients)


def _sync_client(base_url: str, api_key: str) -> openai.OpenAI:
    retries = settings.PROVIDER_MAX_RETRIES
    with _sync_clients_lock:
        client = _sync_clients.get((base_url, api_key, retries))
        if client is None:
            client = _sync_clients[(base_url, api_key, retries)] = openai.OpenAI(
                api_key=api_key,
                base_url=base_url,
                max_retries=retries,
                timeout=_call_timeout(settings.PROVIDER_READ_TIMEOUT),
                http_client=openai.DefaultHttpxClient(
                    timeout=_call_timeout(settings.PROVIDER_READ_TIMEOUT),
                    event_hooks={
                        "response": [
                            credit.refuse_retry_when_out_of_credit_sync,
                            metrics.upstream_responded,
                        ]
                    },
                ),
            )
    return client


def _call_timeout(seconds: float) -> httpx2.Timeout:
    """`seconds` for each read and write of an attempt; its connect no longer than that."""
    return httpx2.Timeout(seconds, connect=min(seconds, settings.PROVIDER_CONNECT_TIMEOUT))


def embed_texts(
    credentials: Credentials,
    *,
    model: str,
    texts: list[str],
    dimensions: int | None,
    timeout: float,
) -> EmbeddingResult:
    """Embed `texts` in one call (synchronous: for worker threads and Celery tasks).

    At most the provider's batch limit of texts (EmbeddingPreset.max_batch; its `batches`
    splits a longer list), none empty. `dimensions`: the vector size to ask for and to
    expect back; None sends no size and takes what the model gives. `timeout` bounds each
    attempt's connect and every read and write; the SDK retries as for chat
    (PROVIDER_MAX_RETRIES, honouring Retry-After). Raises a ProviderError subclass.
    """
    if not texts:
        return EmbeddingResult(vectors=[], prompt_tokens=0, attempts=0)
    # "float", said outright: left out, the SDK asks for base64 and decodes it itself.
    options: dict[str, Any] = {"model": model, "input": texts, "encoding_format": "float"}
    if dimensions is not None:
        options["dimensions"] = dimensions
    client = _sync_client(credentials.base_url, credentials.api_key)
    try:
        # The raw response, read with json.loads: the SDK's model of a large batch (a
        # pydantic object per vector) costs more than the call's own parsing.
        response = client.embeddings.with_raw_response.create(
            **options, timeout=_call_timeout(timeout)
        )
        data = json.loads(response.text)
    except (openai.APIError, httpx2.TransportError) as exc:
        raise _mapped_error(exc, api_key=credentials.api_key) from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        data = None
    vectors = _embedding_vectors(data, count=len(texts), dimensions=dimensions)
    usage = (data.get("usage") if isinstance(data, dict) else None) or {}
    return EmbeddingResult(
        vectors=vectors,
        prompt_tokens=usage.get("prompt_tokens") or usage.get("total_tokens") or 0,
        attempts=response.retries_taken + 1,
        usage_reported=bool(usage),
    )


def _embedding_vectors(data: object, *, count: int, dimensions: int | None) -> list[list[float]]:
    """The vectors sorted by their `index` (the protocol does not promise the inputs'
    order), one for each of the `count` inputs, each of the size asked for."""
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list) or len(items) != count:
        raise ProviderRejected(MALFORMED_RESPONSE)
    try:
        ordered = sorted(items, key=lambda item: int(item["index"]))
        if [int(item["index"]) for item in ordered] != list(range(count)):
            raise ValueError("the indexes are not one for each input")
        vectors = [_floats(item["embedding"]) for item in ordered]
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise ProviderRejected(MALFORMED_RESPONSE) from None
    if dimensions is not None and any(len(vector) != dimensions for vector in vectors):
        raise ProviderRejected(
            gettext_noop("The provider sent embeddings of another size than the one asked for.")
        )
    return vectors


def _floats(embedding: object) -> list[float]:
    # A string is base64 of float32s: what a server that ignores encoding_format sends by
    # default (decoded as the SDK decodes it).
    if isinstance(embedding, str):
        embedding = array.array("f", base64.b64decode(embedding, validate=True)).tolist()
    if not isinstance(embedding, list) or not embedding:
        raise ValueError("an embedding is a non-empty list of numbers")
    return embedding
