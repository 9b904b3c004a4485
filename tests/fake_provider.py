"""A scriptable fake OpenAI-compatible chat-completions and embeddings server for tests.

The server speaks the real wire protocol (JSON bodies and Server-Sent Events framed exactly as
OpenAI, DeepSeek and DashScope send them) so that the real ``openai`` SDK, or any code reading the
raw SSE lines, is exercised end to end. It runs an aiohttp server on its own asyncio loop in a
background thread, which lets synchronous pytest tests and separate server processes (e.g. a
daphne subprocess given ``base_url``) talk to it alike.

Typical use::

    with FakeProvider() as fp:
        fp.script(Reply(content="Hi there", tokens_per_second=50))
        client = OpenAI(api_key="test-key", base_url=fp.base_url, max_retries=0)
        ...
        assert fp.requests[0].json["model"] == "fake-model"

Each ``POST /v1/chat/completions`` consumes the next scripted :class:`Reply`; when the queue is
empty ``FakeProvider.default_reply`` (a plain ``Reply()``) is used. A bearer token of
``"bad-key"`` always gets a 401 without consuming the script.

Each ``POST /v1/embeddings`` likewise consumes the next :class:`EmbeddingReply` of its own
queue (``script_embeddings``), and answers with :func:`embedding_vector` of each input: a
hashed bag of words, so texts sharing words come out close.

Run ``python tests/fake_provider.py --port 8099`` to serve it by hand for manual testing.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import hashlib
import json
import math
import re
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from aiohttp import web

__all__ = [
    "BAD_API_KEY",
    "DEFAULT_EMBEDDING_DIMENSIONS",
    "DEFAULT_MODELS",
    "EmbeddingReply",
    "FakeProvider",
    "RecordedRequest",
    "Reply",
    "StreamRecord",
    "count_prompt_tokens",
    "embedding_vector",
    "embedding_words",
    "split_tokens",
]

BAD_API_KEY = "bad-key"
DEFAULT_MODELS = ("fake-model", "fake-reasoner")
# The size of the fake's vectors when a request asks for none.
DEFAULT_EMBEDDING_DIMENSIONS = 8

# Kana, CJK punctuation, ideographs (incl. extension A and compatibility) and full-width forms:
# these scripts are written without spaces, and real tokenizers emit roughly one token per char.
_CJK = "\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
# The three alternatives cover every character, so the tokens always join back to the input.
_TOKEN_RE = re.compile(rf"[{_CJK}]\s*|[^\s{_CJK}]+\s*|\s+")

_ERROR_DEFAULTS: dict[int, tuple[str, str, str | None]] = {
    400: ("Invalid request.", "invalid_request_error", None),
    401: ("Incorrect API key provided", "invalid_request_error", "invalid_api_key"),
    403: ("You are not allowed to access this resource.", "invalid_request_error", None),
    404: (
        "The model does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    ),
    429: (
        "Rate limit reached for requests. Please try again later.",
        "requests",
        "rate_limit_exceeded",
    ),
    500: (
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
    ),
    502: ("Bad gateway.", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}

_T = TypeVar("_T")


def split_tokens(text: str) -> list[str]:
    """Split ``text`` the way :class:`Reply` streams it.

    Words keep their trailing whitespace, each CJK character is its own token (with any
    whitespace after it), and leading whitespace is a token of its own. ``"".join()`` of the
    result is always ``text``.
    """
    return _TOKEN_RE.findall(text)


def count_prompt_tokens(body: Any) -> int:
    """Rough prompt-token count: characters of all text in ``messages`` divided by 4, min 1.

    Accepts plain string contents and multimodal content-part lists; non-text parts (images,
    audio) and malformed entries are ignored rather than rejected.
    """
    chars = 0
    messages = body.get("messages") if isinstance(body, dict) else None
    for message in messages if isinstance(messages, list) else ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            chars += len(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    chars += len(part["text"])
    return max(1, chars // 4)


@dataclass
class Reply:
    """How the fake provider answers one chat-completions request.

    Chunk counting (for ``disconnect_after`` / ``stall_after``) covers every ``data: {...}``
    event of a stream: the role chunk, each reasoning and content chunk, the finish chunk and the
    usage chunk; the final ``data: [DONE]`` is not counted. ``0`` therefore acts right after the
    HTTP headers (and ``first_token_delay``). For non-streaming requests any non-None
    ``disconnect_after`` aborts, and any non-None ``stall_after`` stalls, before the JSON body
    is sent.
    """

    content: str | list[str] = "Hello from the fake provider."
    """A str is split with :func:`split_tokens`; a list is used as the token list verbatim."""
    reasoning: str | list[str] = ""
    """Streamed first as ``delta.reasoning_content`` chunks (DeepSeek style), then content."""
    tokens_per_second: float | None = None
    """None: as fast as possible; otherwise sleep ``1/tps`` between reasoning/content chunks."""
    first_token_delay: float = 0.0
    """Seconds before the first chunk, after the HTTP headers were sent (non-streaming: before
    the response)."""
    finish_reason: str | None = "stop"
    """None: no chunk carrying a finish_reason is sent."""
    usage: dict | None | Literal["auto"] = "auto"
    """``"auto"``: computed from the request and tokens. Streaming: sent as a final chunk with
    ``"choices": []`` only when the request had ``stream_options.include_usage`` true.
    None: never sent."""
    send_done: bool = True
    """Send ``data: [DONE]`` at the end of a stream."""
    status: int = 200
    """Non-200: respond at once with an OpenAI-style JSON error body."""
    error_message: str = ""
    """Message for the error body; empty: a sensible default for ``status``."""
    error_code: str | None = None
    """``error.code``, e.g. ``"context_length_exceeded"``; None: the default for ``status``."""
    headers: dict[str, str] = field(default_factory=dict)
    """Extra response headers, e.g. ``{"Retry-After": "0"}``."""
    disconnect_after: int | None = None
    """Abort the TCP connection (``transport.abort()``) after this many chunks were written."""
    stall_after: int | None = None
    """After this many chunks stop writing, keeping the connection open until the client closes
    it or ``stall_seconds`` pass."""
    stall_seconds: float = 30.0
    resume_after_stall: bool = False
    """When a stall times out with the client still connected: False ends the response there
    (a truncated stream without [DONE]; non-streaming: the connection is aborted), True sends
    the rest as if nothing had happened (models a slow provider)."""
    reject_stream_options: bool = False
    """Respond 400 if the request body has ``stream_options``, as some compatible servers do."""
    model: str | None = None
    """``model`` field of the response; None: echo the requested model."""

    def content_tokens(self) -> list[str]:
        return _as_tokens(self.content)

    def reasoning_tokens(self) -> list[str]:
        return _as_tokens(self.reasoning)


def _as_tokens(value: str | list[str]) -> list[str]:
    return split_tokens(value) if isinstance(value, str) else list(value)


def embedding_words(text: str) -> list[str]:
    """The words of ``text`` as the fake embeds and counts them: :func:`split_tokens`'
    tokens, lowercased, without punctuation (each CJK character a word of its own)."""
    words = (re.sub(r"\W", "", token.lower()) for token in split_tokens(text))
    return [word for word in words if word]


def embedding_vector(text: str, dimensions: int = DEFAULT_EMBEDDING_DIMENSIONS) -> list[float]:
    """The fake's embedding of ``text``: each word hashed to a dimension and a sign, summed,
    then scaled to length 1. Texts sharing most words come out close (cosine near 1), unrelated
    ones near 0; a text without words is the first axis."""
    vector = [0.0] * dimensions
    for word in embedding_words(text):
        digest = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")
        vector[digest % dimensions] += 1.0 if (digest >> 32) & 1 else -1.0
    norm = math.sqrt(sum(x * x for x in vector))
    if not norm:
        return [1.0] + [0.0] * (dimensions - 1)
    return [x / norm for x in vector]


@dataclass
class EmbeddingReply:
    """How the fake provider answers one embeddings request; the error fields are
    :class:`Reply`'s."""

    status: int = 200
    """Non-200: answer (after ``delay``) with an OpenAI-style JSON error body."""
    error_message: str = ""
    error_code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    """Seconds before anything is sent (a slow provider, for timeouts)."""
    disconnect: bool = False
    """Abort the TCP connection (after ``delay``) instead of answering."""
    usage: dict | None | Literal["auto"] = "auto"
    """``"auto"``: prompt_tokens is the inputs' :func:`embedding_words`, at least 1 each.
    None: no usage field, as some local servers."""
    dimensions: int | None = None
    """Vectors of this size whatever was asked (a server ignoring ``dimensions``); None: the
    size asked for, else DEFAULT_EMBEDDING_DIMENSIONS."""
    encoding: Literal["float", "base64"] | None = None
    """Send the vectors so whatever ``encoding_format`` asked (a server ignoring it); None:
    as asked, float by default."""
    reverse_order: bool = False
    """List the vectors last input first (each with its right ``index``), which the protocol
    allows: a client must sort by index."""
    model: str | None = None
    """``model`` field of the response; None: echo the requested model."""


@dataclass
class RecordedRequest:
    """One HTTP request the fake provider received (any path, including rejected ones)."""

    path: str
    method: str
    headers: dict[str, str]
    json: Any
    """The parsed JSON body, or None when the body was empty or not valid JSON."""
    received_at: float
    """``time.monotonic()`` when the request body had been read."""
    body: bytes = b""
    client_port: int = 0
    """The client's TCP port: two requests on one port came over one kept-alive connection."""

    @property
    def api_key(self) -> str | None:
        """The bearer token from the Authorization header, if any."""
        auth = self.headers.get("Authorization", "")
        return auth[7:] if auth.startswith("Bearer ") else None

    @property
    def continuation(self) -> str:
        """How the request asked to continue a partial answer: ``"prefix"`` (DeepSeek's
        chat prefix completion), ``"partial"`` (DashScope's partial mode), or ``""``."""
        return _continuation_of(self.json)[0]

    @property
    def continued_text(self) -> str | None:
        """The partial answer a prefix/partial request asked the model to go on from."""
        return _continuation_of(self.json)[1]


@dataclass
class StreamRecord:
    """What happened to one streamed (SSE) response, updated live by the server thread.

    ``chunks_sent``, ``emit_times`` and ``finished`` are updated just before the bytes are
    written, so once a client has seen a chunk the record already accounts for it. A client
    disconnect is only known after the fact: use ``FakeProvider.wait_for_disconnect``.
    """

    request: RecordedRequest
    reply: Reply
    chunks_sent: int = 0
    """``data: {...}`` events written, counted as in :class:`Reply` ([DONE] excluded)."""
    emit_times: list[float] = field(default_factory=list)
    """``time.monotonic()`` as each reasoning/content chunk was written."""
    client_disconnected: bool = False
    """The client closed the connection before the server finished the stream."""
    server_aborted: bool = False
    """The server aborted the connection because of ``Reply.disconnect_after``."""
    stalled: bool = False
    finished: bool = False
    """Every chunk (and [DONE] if requested) was written normally."""
    ended_at: float | None = None
    """When the handler finished; may trail what the client saw: see wait_for_streams_ended."""


class FakeProvider:
    """A fake OpenAI-compatible server on loopback; see the module docstring.

    All recordings and the reply queue are guarded by one lock, and every change to them
    notifies a condition, so tests may poll the properties or block in the ``wait_for_*``
    helpers from any thread.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self.default_reply = Reply()
        # Optional: decides the reply from the request body when the queue is empty (lets a
        # test answer summary calls and chat calls differently).
        self.responder: Callable[[dict], Reply] | None = None
        self.models: list[str] = list(DEFAULT_MODELS)
        self.default_embedding_reply = EmbeddingReply()
        self._cond = threading.Condition(threading.RLock())
        self._queue: deque[Reply] = deque()
        self._embedding_queue: deque[EmbeddingReply] = deque()
        self._requests: list[RecordedRequest] = []
        self._streams: list[StreamRecord] = []
        # Bumped by reset() so that streams of an earlier test stop stalling.
        self._generation = 0
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT/v1``, with the real port once started."""
        return f"http://{self.host}:{self.port}/v1"

    def start(self, timeout: float = 10) -> FakeProvider:
        """Start the server thread; returns once the socket is listening."""
        if self._thread is not None:
            raise RuntimeError("FakeProvider already started")
        self._stopping = False
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._start_server())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.close()

        self._thread = threading.Thread(target=run, name="fake-provider", daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            raise TimeoutError("fake provider did not start listening")
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self

    def stop(self, timeout: float = 10) -> None:
        """Stop the server, ending open streams; safe to call twice."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        self._stopping = True
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._stop_server(), loop).result(timeout)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        self._thread = self._loop = None

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _start_server(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle_chat)
        # DeepSeek's beta endpoint, the only one that takes a `"prefix": true` message.
        app.router.add_post("/beta/chat/completions", self._handle_chat)
        app.router.add_post("/v1/embeddings", self._handle_embeddings)
        app.router.add_get("/v1/models", self._handle_models)
        app.router.add_get("/v1/models/{model_id}", self._handle_model)
        app.router.add_route("*", "/{tail:.*}", self._handle_unknown)
        # handler_cancellation makes aiohttp cancel a handler as soon as its client goes away,
        # which is how a sleeping or stalled stream learns about the disconnect promptly.
        self._runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _stop_server(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- scripting ------------------------------------------------------------------------

    def script(self, *replies: Reply) -> None:
        """Replace the reply queue; each chat request consumes the next reply."""
        with self._cond:
            self._queue = deque(replies)

    def enqueue(self, *replies: Reply) -> None:
        """Append replies to the queue."""
        with self._cond:
            self._queue.extend(replies)

    def script_embeddings(self, *replies: EmbeddingReply) -> None:
        """Replace the embeddings reply queue; each embeddings request consumes the next."""
        with self._cond:
            self._embedding_queue = deque(replies)

    def reset(self) -> None:
        """Clear queues and recordings, restore default replies and models, end stalled
        streams."""
        with self._cond:
            self._queue.clear()
            self._embedding_queue.clear()
            self._requests = []
            self._streams = []
            self.default_reply = Reply()
            self.default_embedding_reply = EmbeddingReply()
            self.responder = None
            self.models = list(DEFAULT_MODELS)
            self._generation += 1
            self._cond.notify_all()

    @property
    def pending_replies(self) -> int:
        """How many scripted replies have not been consumed yet."""
        with self._cond:
            return len(self._queue)

    # -- recordings -----------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """Snapshot of every request received since the last reset, in arrival order."""
        with self._cond:
            return list(self._requests)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        """Snapshot of the ``POST /v1/chat/completions`` requests only."""
        with self._cond:
            return [r for r in self._requests if r.path.endswith("/chat/completions")]

    @property
    def embedding_requests(self) -> list[RecordedRequest]:
        """Snapshot of the ``POST /v1/embeddings`` requests only."""
        with self._cond:
            return [r for r in self._requests if r.path.endswith("/embeddings")]

    @property
    def streams(self) -> list[StreamRecord]:
        """Snapshot of the streamed responses since the last reset (records update live)."""
        with self._cond:
            return list(self._streams)

    def wait_for(self, predicate: Callable[[FakeProvider], _T], timeout: float = 10) -> _T:
        """Block until ``predicate(self)`` is truthy and return its value.

        The predicate runs under the provider's (re-entrant) lock, so it sees a consistent
        state and may use the snapshot properties. Raises TimeoutError after ``timeout``.
        """
        with self._cond:
            result = self._cond.wait_for(lambda: predicate(self), timeout)
        if not result:
            raise TimeoutError(f"fake provider: condition not met within {timeout}s")
        return result

    def wait_for_requests(self, n: int, timeout: float = 10) -> list[RecordedRequest]:
        """Wait until at least ``n`` requests were received; returns the snapshot."""
        self.wait_for(lambda fp: len(fp._requests) >= n, timeout)
        return self.requests

    def wait_for_stream_start(self, timeout: float = 10) -> StreamRecord:
        """Wait until some stream has written at least one chunk; returns the first such."""
        return self.wait_for(
            lambda fp: next((s for s in fp._streams if s.chunks_sent >= 1), None), timeout
        )

    def wait_for_disconnect(self, timeout: float = 10) -> StreamRecord:
        """Wait until some stream saw its client disconnect; returns the first such."""
        return self.wait_for(
            lambda fp: next((s for s in fp._streams if s.client_disconnected), None), timeout
        )

    def wait_for_streams_ended(self, timeout: float = 10) -> list[StreamRecord]:
        """Wait until every stream started so far has ended, however it ended."""
        self.wait_for(lambda fp: all(s.ended_at is not None for s in fp._streams), timeout)
        return self.streams

    def _update(self, record: StreamRecord, **changes: Any) -> None:
        with self._cond:
            for name, value in changes.items():
                setattr(record, name, value)
            self._cond.notify_all()

    # -- HTTP handlers --------------------------------------------------------------------

    async def _record(self, request: web.Request) -> RecordedRequest:
        body = await request.read()
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        recorded = RecordedRequest(
            path=request.path,
            method=request.method,
            headers=dict(request.headers),
            json=parsed,
            received_at=time.monotonic(),
            body=body,
            client_port=(request.transport.get_extra_info("peername") or ("", 0))[1],
        )
        with self._cond:
            self._requests.append(recorded)
            self._cond.notify_all()
        return recorded

    def _next_reply(self, body: Any) -> Reply:
        with self._cond:
            if self._queue:
                return self._queue.popleft()
            responder = self.responder
        if responder is not None and isinstance(body, dict):
            return responder(body)
        return self.default_reply

    async def _handle_models(self, request: web.Request) -> web.StreamResponse:
        recorded = await self._record(request)
        if recorded.api_key == BAD_API_KEY:
            return _error_response(401)
        created = int(time.time())
        data = [_model_object(m, created) for m in list(self.models)]
        return _json_response({"object": "list", "data": data})

    async def _handle_model(self, request: web.Request) -> web.StreamResponse:
        recorded = await self._record(request)
        if recorded.api_key == BAD_API_KEY:
            return _error_response(401)
        model_id = request.match_info["model_id"]
        if model_id not in self.models:
            return _error_response(404, f"The model '{model_id}' does not exist")
        return _json_response(_model_object(model_id, int(time.time())))

    async def _handle_unknown(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        return _error_response(
            404, f"Invalid URL ({request.method} {request.path})", code="unknown_url"
        )

    async def _handle_chat(self, request: web.Request) -> web.StreamResponse:
        recorded = await self._record(request)
        if recorded.api_key == BAD_API_KEY:
            return _error_response(401)
        body = recorded.json
        reply = self._next_reply(body)
        if not isinstance(body, dict):
            return _error_response(400, "We could not parse the JSON body of your request.")
        refused = _continuation_refusal(request.path, body)
        if refused:
            return _error_response(400, refused)
        if reply.reject_stream_options and "stream_options" in body:
            return _error_response(
                400,
                "Unrecognized request argument supplied: stream_options",
                headers=reply.headers,
            )
        if reply.status != 200:
            return _error_response(
                reply.status, reply.error_message, code=reply.error_code, headers=reply.headers
            )
        if body.get("stream") is True:
            return await self._stream(request, recorded, reply)
        return await self._complete(request, recorded, reply)

    async def _handle_embeddings(self, request: web.Request) -> web.StreamResponse:
        recorded = await self._record(request)
        if recorded.api_key == BAD_API_KEY:
            return _error_response(401)
        with self._cond:
            queue = self._embedding_queue
            reply = queue.popleft() if queue else self.default_embedding_reply
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.disconnect:
            _abort(request)
            return web.Response()
        if reply.status != 200:
            return _error_response(
                reply.status, reply.error_message, code=reply.error_code, headers=reply.headers
            )
        body = recorded.json if isinstance(recorded.json, dict) else {}
        texts, problem = _embedding_request(body)
        if problem:
            return _error_response(400, problem)
        size = reply.dimensions or body.get("dimensions") or DEFAULT_EMBEDDING_DIMENSIONS
        as_base64 = (reply.encoding or body.get("encoding_format")) == "base64"
        data = [
            {"object": "embedding", "index": i, "embedding": _encoded(vector, as_base64)}
            for i, vector in enumerate(embedding_vector(text, size) for text in texts)
        ]
        if reply.reverse_order:
            data.reverse()
        payload: dict[str, Any] = {
            "object": "list",
            "data": data,
            "model": reply.model or body.get("model"),
        }
        if reply.usage == "auto":
            tokens = sum(max(1, len(embedding_words(text))) for text in texts)
            payload["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
        elif reply.usage is not None:
            payload["usage"] = reply.usage
        return _json_response(payload, headers=reply.headers)

    async def _complete(
        self, request: web.Request, recorded: RecordedRequest, reply: Reply
    ) -> web.StreamResponse:
        generation = self._generation
        if reply.first_token_delay:
            await asyncio.sleep(reply.first_token_delay)
        if reply.disconnect_after is not None:
            _abort(request)
            return web.Response()
        if reply.stall_after is not None:
            gone = await self._stall(request, reply, generation)
            if gone or not reply.resume_after_stall:
                _abort(request)
                return web.Response()
        content = reply.content_tokens()
        reasoning = reply.reasoning_tokens()
        message: dict[str, Any] = {"role": "assistant", "content": "".join(content)}
        if reasoning:
            message["reasoning_content"] = "".join(reasoning)
        payload: dict[str, Any] = {
            "id": _completion_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": reply.model or recorded.json.get("model") or DEFAULT_MODELS[0],
            "system_fingerprint": None,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": reply.finish_reason,
                }
            ],
        }
        usage = _usage(reply, recorded.json, content, reasoning)
        if usage is not None:
            payload["usage"] = usage
        return _json_response(payload, headers=reply.headers)

    async def _stream(
        self, request: web.Request, recorded: RecordedRequest, reply: Reply
    ) -> web.StreamResponse:
        body = recorded.json
        generation = self._generation
        content = reply.content_tokens()
        reasoning = reply.reasoning_tokens()
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        usage = _usage(reply, body, content, reasoning) if include_usage else None

        base = {
            "id": _completion_id(),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": reply.model or body.get("model") or DEFAULT_MODELS[0],
            "system_fingerprint": None,
        }
        if usage is not None:
            base["usage"] = None

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            return {**base, "choices": [choice]}

        # (is_token, payload): token chunks are paced and time-stamped, the others are not.
        events: list[tuple[bool, dict[str, Any]]] = [
            (False, chunk({"role": "assistant", "content": ""}))
        ]
        events += [(True, chunk({"content": None, "reasoning_content": t})) for t in reasoning]
        # DeepSeek keeps the field in content deltas once a reply reasons; mirror that.
        extra = {"reasoning_content": None} if reasoning else {}
        events += [(True, chunk({"content": t, **extra})) for t in content]
        if reply.finish_reason is not None:
            events.append((False, chunk({}, reply.finish_reason)))
        if usage is not None:
            events.append((False, {**base, "choices": [], "usage": usage}))

        record = StreamRecord(request=recorded, reply=reply)
        with self._cond:
            self._streams.append(record)
            self._cond.notify_all()

        response = web.StreamResponse(status=200)
        response.content_type = "text/event-stream"
        response.charset = "utf-8"
        response.headers["Cache-Control"] = "no-cache"
        response.headers["x-request-id"] = f"req_{uuid.uuid4().hex}"
        response.headers.update(reply.headers)
        interval = 1.0 / reply.tokens_per_second if reply.tokens_per_second else 0.0

        async def checkpoint(sent: int) -> bool:
            """Apply disconnect_after/stall_after at this chunk count; False: stop streaming."""
            if reply.disconnect_after == sent:
                self._update(record, server_aborted=True)
                _abort(request)
                return False
            if reply.stall_after == sent:
                self._update(record, stalled=True)
                gone = await self._stall(request, reply, generation)
                if gone:
                    self._update(record, client_disconnected=True)
                    return False
                if generation != self._generation or self._stopping:
                    _abort(request)
                    return False
                return reply.resume_after_stall
            return True

        async def emit(data: bytes, sent: int, is_token: bool) -> None:
            # Recorded before the write, and undone if it fails, so that a test which has just
            # seen a chunk arrive never finds the record lagging behind the client.
            with self._cond:
                record.chunks_sent = sent
                if is_token:
                    record.emit_times.append(time.monotonic())
                self._cond.notify_all()
            try:
                await response.write(data)
            except BaseException:
                with self._cond:
                    record.chunks_sent = sent - 1
                    if is_token:
                        record.emit_times.pop()
                    self._cond.notify_all()
                raise

        try:
            await response.prepare(request)
            if reply.first_token_delay:
                await asyncio.sleep(reply.first_token_delay)
            if not await checkpoint(0):
                return response
            first_token = True
            for sent, (is_token, payload) in enumerate(events, start=1):
                if is_token:
                    if not first_token and interval:
                        await asyncio.sleep(interval)
                    first_token = False
                await emit(_sse(payload), sent, is_token)
                if not await checkpoint(sent):
                    return response
            self._update(record, finished=True)
            if reply.send_done:
                try:
                    await response.write(b"data: [DONE]\n\n")
                except BaseException:
                    self._update(record, finished=False)
                    raise
            await response.write_eof()
        except asyncio.CancelledError:
            # aiohttp cancels the handler when the peer goes away; a cancellation after our own
            # abort, or after the last chunk went out, is not the client leaving early.
            if not (record.server_aborted or record.finished):
                self._update(record, client_disconnected=True)
            raise
        except ConnectionResetError:
            if not (record.server_aborted or record.finished):
                self._update(record, client_disconnected=True)
        finally:
            self._update(record, ended_at=time.monotonic())
        return response

    async def _stall(self, request: web.Request, reply: Reply, generation: int) -> bool:
        """Hold the connection open without writing; True if the client closed it meanwhile.

        Handler cancellation normally interrupts this sleep first; polling the transport is a
        second line of defence for peers whose close aiohttp does not turn into a cancel.
        Returns False when stall_seconds elapsed or the provider was reset or stopped.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + reply.stall_seconds
        while True:
            transport = request.transport
            if transport is None or transport.is_closing():
                return True
            remaining = deadline - loop.time()
            if remaining <= 0 or generation != self._generation or self._stopping:
                return False
            await asyncio.sleep(min(0.05, remaining))


def _continuation_of(body: Any) -> tuple[str, str | None]:
    """(shape, partial text) of a request's last message, as a provider reads it."""
    messages = body.get("messages") if isinstance(body, dict) else None
    last = messages[-1] if isinstance(messages, list) and messages else None
    if not isinstance(last, dict):
        return "", None
    for shape in ("prefix", "partial"):
        if last.get(shape) is True:
            return shape, last.get("content")
    return "", None


def _continuation_refusal(path: str, body: dict[str, Any]) -> str:
    """Why a provider would refuse this continuation ("" when it would not): a prefix or
    partial flag only counts on the last message, an assistant's; DeepSeek takes a prefix
    on its /beta endpoint only."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return ""
    for index, message in enumerate(messages):
        flags = [f for f in ("prefix", "partial") if isinstance(message, dict) and f in message]
        if not flags:
            continue
        if index != len(messages) - 1 or message.get("role") != "assistant":
            return f"`{flags[0]}` is only allowed on the last message, an assistant's."
        if "prefix" in flags and not path.startswith("/beta/"):
            return "Chat prefix completion requires the beta endpoint (base_url .../beta)."
    return ""


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()


def _embedding_request(body: dict[str, Any]) -> tuple[list[str], str]:
    """The texts of an embeddings body, or what is wrong with it (as OpenAI words it)."""
    raw = body.get("input")
    texts = [raw] if isinstance(raw, str) else raw
    if not body.get("model"):
        return [], "you must provide a model parameter"
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        return [], "'input' must be a string or a non-empty array of strings"
    if any(not text for text in texts):
        return [], "'$.input' is invalid: an input is an empty string"
    dimensions = body.get("dimensions")
    if dimensions is not None and (type(dimensions) is not int or dimensions < 1):
        return [], "'dimensions' must be a positive integer"
    if body.get("encoding_format", "float") not in ("float", "base64"):
        return [], "'encoding_format' must be 'float' or 'base64'"
    return texts, ""


def _encoded(vector: list[float], as_base64: bool) -> list[float] | str:
    # base64 of little-endian float32s, as OpenAI sends it.
    if not as_base64:
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:29]}"


def _model_object(model_id: str, created: int) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": "fake-provider"}


def _usage(
    reply: Reply, body: Any, content: list[str], reasoning: list[str]
) -> dict[str, Any] | None:
    if reply.usage != "auto":
        return reply.usage
    prompt = count_prompt_tokens(body)
    completion = len(content) + len(reasoning)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": len(reasoning)},
    }


def _dumps(payload: Any) -> bytes:
    # Compact, non-ASCII-escaped UTF-8, as the real providers send it.
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


def _sse(payload: dict[str, Any]) -> bytes:
    return b"data: " + _dumps(payload) + b"\n\n"


def _json_response(
    payload: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    response = web.Response(
        status=status, body=_dumps(payload), content_type="application/json", charset="utf-8"
    )
    response.headers["x-request-id"] = f"req_{uuid.uuid4().hex}"
    response.headers.update(headers or {})
    return response


def _error_response(
    status: int,
    message: str = "",
    *,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    default_message, error_type, default_code = _ERROR_DEFAULTS.get(
        status, (f"HTTP {status}", "api_error", None)
    )
    error = {
        "message": message or default_message,
        "type": error_type,
        "param": None,
        "code": code if code is not None else default_code,
    }
    return _json_response({"error": error}, status=status, headers=headers)


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the fake provider until interrupted.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    with FakeProvider(args.host, args.port) as fp:
        print(f"fake provider listening at {fp.base_url}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
