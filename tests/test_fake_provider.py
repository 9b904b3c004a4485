"""Tests of the fake provider, driven through the real openai SDK and its raw SSE lines.

What the SDK (openai 3.x on httpx2) raises while iterating a stream, as pinned by these tests:

====================  ==========================================  ==========================
failure mid-stream    ``Stream``/``AsyncStream`` iteration        raw ``iter_lines()``
====================  ==========================================  ==========================
connection aborted    ``openai.APIConnectionError``               ``httpx2.RemoteProtocolError``
                      (cause: ``httpx2.RemoteProtocolError``)
read timeout / stall  ``openai.APITimeoutError``                  ``httpx2.ReadTimeout``
                      (cause: ``httpx2.ReadTimeout``)
====================  ==========================================  ==========================
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import httpx2
import openai
import pytest
from openai import AsyncOpenAI, OpenAI

from tests.fake_provider import (
    EmbeddingReply,
    FakeProvider,
    Reply,
    embedding_vector,
    split_tokens,
)

MODEL = "fake-model"
MESSAGES = [{"role": "user", "content": "Say hello to the test suite."}]
# A read timeout well below every stall in these tests but far above loopback latency. httpx2, not
# legacy httpx: it is what the SDK is built on and the only one the app's requirements pin.
SHORT_READ = httpx2.Timeout(5.0, read=0.3)


@pytest.fixture(scope="module")
def fp():
    with FakeProvider() as provider:
        yield provider


@pytest.fixture(autouse=True)
def _fresh_provider(fp):
    fp.reset()
    yield
    fp.reset()


@pytest.fixture
def openai_client(fp):
    with OpenAI(api_key="test-key", base_url=fp.base_url, max_retries=0) as sdk:
        yield sdk


def async_client(fp: FakeProvider, **kwargs: Any) -> AsyncOpenAI:
    return AsyncOpenAI(api_key="test-key", base_url=fp.base_url, max_retries=0, **kwargs)


def stream_chunks(sdk: OpenAI, **kwargs: Any) -> list:
    params = {"model": MODEL, "messages": MESSAGES, "stream": True, **kwargs}
    return list(sdk.chat.completions.create(**params))


def content_of(chunks: list) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def raw_data_lines(sdk: OpenAI, **kwargs: Any) -> list[str]:
    """The payloads of the ``data:`` lines, read the way the app reads them."""
    params = {"model": MODEL, "messages": MESSAGES, "stream": True, **kwargs}
    with sdk.chat.completions.with_streaming_response.create(**params) as response:
        return [line[6:] for line in response.iter_lines() if line.startswith("data: ")]


def test_split_tokens_keeps_whitespace_with_words_and_splits_cjk_per_character():
    assert split_tokens("Hello big world.\n") == ["Hello ", "big ", "world.\n"]
    assert split_tokens("你好，世界!") == ["你", "好", "，", "世", "界", "!"]
    assert split_tokens("  lead 中文 mix") == ["  ", "lead ", "中", "文 ", "mix"]
    assert split_tokens("") == []
    for text in ["a  b\n\nc ", "日本語のテキスト", " x 好 "]:
        assert "".join(split_tokens(text)) == text


def test_streamed_content_tokens_arrive_in_order_and_join_to_the_scripted_text(fp, openai_client):
    text = "The quick brown fox jumps over the lazy dog."
    fp.script(Reply(content=text))

    chunks = stream_chunks(openai_client)

    first, *middle, last = chunks
    assert first.choices[0].delta.role == "assistant"
    assert first.choices[0].delta.content == ""
    assert [c.choices[0].delta.content for c in middle] == split_tokens(text)
    assert content_of(chunks) == text
    assert last.choices[0].delta.content is None
    assert last.choices[0].finish_reason == "stop"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    assert {c.id for c in chunks} == {chunks[0].id}
    assert chunks[0].id.startswith("chatcmpl-")
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert {c.model for c in chunks} == {MODEL}
    assert all(c.usage is None for c in chunks)
    record = fp.streams[0]
    assert record.finished and not record.client_disconnected
    assert record.chunks_sent == len(chunks)


def test_a_token_list_is_streamed_verbatim_and_model_can_be_overridden(fp, openai_client):
    fp.script(Reply(content=["Hel", "lo", ", 世界"], model="upstream-model-2025"))

    chunks = stream_chunks(openai_client)

    assert [c.choices[0].delta.content for c in chunks[1:-1]] == ["Hel", "lo", ", 世界"]
    assert {c.model for c in chunks} == {"upstream-model-2025"}


def test_raw_sse_body_uses_openai_framing_and_every_data_line_is_json(fp, openai_client):
    fp.script(Reply(content="Hi there", reasoning="Hmm"))
    params = {"model": MODEL, "messages": MESSAGES, "stream": True}

    with openai_client.chat.completions.with_streaming_response.create(**params) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        body = b"".join(response.iter_bytes())

    assert body.endswith(b"\n\ndata: [DONE]\n\n")
    events = body.split(b"\n\n")
    assert events[-1] == b""
    assert all(e.startswith(b"data: ") for e in events[:-1])
    chunks = [json.loads(e[6:]) for e in events[:-2]]
    for chunk in chunks:
        assert set(chunk) == {"id", "object", "created", "model", "system_fingerprint", "choices"}
        assert chunk["system_fingerprint"] is None
        assert isinstance(chunk["created"], int)
        (choice,) = chunk["choices"]
        assert set(choice) == {"index", "delta", "logprobs", "finish_reason"}
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert deltas[1] == {"content": None, "reasoning_content": "Hmm"}
    assert deltas[2:4] == [
        {"content": "Hi ", "reasoning_content": None},
        {"content": "there", "reasoning_content": None},
    ]
    assert deltas[4] == {}
    assert chunks[4]["choices"][0]["finish_reason"] == "stop"


def test_raw_lines_parse_with_json_loads_and_end_with_done(fp, openai_client):
    fp.script(Reply(content="Raw lines are fast."))

    lines = raw_data_lines(openai_client)

    assert lines[-1] == "[DONE]"
    parsed = [json.loads(line) for line in lines[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in parsed)
    assert text == "Raw lines are fast."


def test_reasoning_content_streams_before_content(fp):
    fp.script(Reply(reasoning="Let me think about it.", content="The answer is 42."))
    kinds: list[tuple[str, str]] = []

    async def consume() -> None:
        async with async_client(fp) as sdk:
            stream = await sdk.chat.completions.create(
                model="fake-reasoner", messages=MESSAGES, stream=True
            )
            async for chunk in stream:
                delta = chunk.choices[0].delta
                reasoning = (delta.model_extra or {}).get("reasoning_content")
                assert reasoning == getattr(delta, "reasoning_content", None)
                if reasoning:
                    assert delta.content is None
                    kinds.append(("reasoning", reasoning))
                elif delta.content:
                    kinds.append(("content", delta.content))

    asyncio.run(consume())

    order = [kind for kind, _ in kinds]
    assert order == sorted(order, key=lambda k: k != "reasoning")
    assert "".join(t for k, t in kinds if k == "reasoning") == "Let me think about it."
    assert "".join(t for k, t in kinds if k == "content") == "The answer is 42."


def test_usage_chunk_with_empty_choices_is_sent_only_when_include_usage_is_requested(
    fp, openai_client
):
    fp.script(Reply(content="one two three", reasoning="a b"), Reply(content="one two three"))

    with_usage = stream_chunks(openai_client, stream_options={"include_usage": True})
    without_usage = stream_chunks(openai_client)

    *body, usage_chunk = with_usage
    assert usage_chunk.choices == []
    assert all(c.usage is None and c.choices for c in body)
    usage = usage_chunk.usage
    prompt = len(MESSAGES[0]["content"]) // 4
    assert (usage.prompt_tokens, usage.completion_tokens) == (prompt, 5)
    assert usage.total_tokens == prompt + 5
    assert usage.prompt_tokens_details.cached_tokens == 0
    assert usage.completion_tokens_details.reasoning_tokens == 2
    assert all(c.choices and c.usage is None for c in without_usage)
    assert without_usage[-1].choices[0].finish_reason == "stop"


def test_usage_null_fields_precede_the_usage_chunk_on_the_wire(fp, openai_client):
    fp.script(Reply(content="x y"))

    lines = raw_data_lines(openai_client, stream_options={"include_usage": True})

    chunks = [json.loads(line) for line in lines[:-1]]
    assert all("usage" in c and c["usage"] is None for c in chunks[:-1])
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 2


def test_explicit_usage_is_sent_verbatim_and_none_never_sends_usage(fp, openai_client):
    custom = {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    fp.script(Reply(usage=custom), Reply(usage=None))

    first = stream_chunks(openai_client, stream_options={"include_usage": True})
    second = stream_chunks(openai_client, stream_options={"include_usage": True})

    assert first[-1].usage.model_dump(exclude_none=True) == custom
    assert all(c.choices and c.usage is None for c in second)


def test_no_finish_chunk_is_sent_when_finish_reason_is_none(fp, openai_client):
    fp.script(Reply(content="cut short", finish_reason=None))

    chunks = stream_chunks(openai_client)

    assert all(c.choices[0].finish_reason is None for c in chunks)
    assert content_of(chunks) == "cut short"


def test_a_missing_done_still_ends_sdk_and_raw_iteration(fp, openai_client):
    fp.script(Reply(content="no done here", send_done=False), Reply(send_done=False))

    chunks = stream_chunks(openai_client)
    lines = raw_data_lines(openai_client)

    assert content_of(chunks) == "no done here"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert "[DONE]" not in lines
    assert json.loads(lines[-1])["choices"][0]["finish_reason"] == "stop"
    assert all(s.finished for s in fp.streams)


def test_rate_limit_429_with_retry_after_raises_rate_limit_error(fp, openai_client):
    fp.script(Reply(status=429, headers={"Retry-After": "0"}))

    with pytest.raises(openai.RateLimitError) as caught:
        stream_chunks(openai_client)

    error = caught.value
    assert error.status_code == 429
    assert error.response.headers["retry-after"] == "0"
    assert error.code == "rate_limit_exceeded"
    assert error.body["message"].startswith("Rate limit reached")
    assert fp.streams == []


@pytest.mark.parametrize(
    ("status", "exception"),
    [
        (400, openai.BadRequestError),
        (403, openai.PermissionDeniedError),
        (404, openai.NotFoundError),
        (500, openai.InternalServerError),
        (503, openai.InternalServerError),
    ],
)
def test_scripted_error_statuses_map_to_the_sdk_exception_classes(
    fp, openai_client, status, exception
):
    fp.script(Reply(status=status))

    with pytest.raises(exception) as caught:
        openai_client.chat.completions.create(model=MODEL, messages=MESSAGES)

    assert caught.value.status_code == status
    assert set(caught.value.body) == {"message", "type", "param", "code"}


def test_error_message_and_code_are_passed_through(fp, openai_client):
    message = "This model's maximum context length is 8 tokens."
    fp.script(Reply(status=400, error_code="context_length_exceeded", error_message=message))

    with pytest.raises(openai.BadRequestError) as caught:
        stream_chunks(openai_client)

    assert caught.value.code == "context_length_exceeded"
    assert caught.value.body["message"] == message
    assert caught.value.body["type"] == "invalid_request_error"


def test_bad_key_gets_401_authentication_error_without_consuming_the_script(fp):
    fp.script(Reply(content="still queued"))
    with OpenAI(api_key="bad-key", base_url=fp.base_url, max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError) as caught:
            stream_chunks(bad)
        with pytest.raises(openai.AuthenticationError):
            bad.models.list()

    assert caught.value.code == "invalid_api_key"
    assert caught.value.body["message"] == "Incorrect API key provided"
    assert fp.pending_replies == 1
    assert fp.requests[0].api_key == "bad-key"


def test_disconnect_after_makes_sdk_iteration_raise_api_connection_error(fp, openai_client):
    fp.script(Reply(content="one two three four", disconnect_after=3))
    received: list = []

    # The SDK wraps the truncated chunked body as APIConnectionError (not APITimeoutError).
    with pytest.raises(openai.APIConnectionError) as caught:
        for chunk in openai_client.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True
        ):
            received.append(chunk)

    assert not isinstance(caught.value, openai.APITimeoutError)
    assert isinstance(caught.value.__cause__, httpx2.RemoteProtocolError)
    assert content_of(received) == "one two "
    record = fp.streams[0]
    assert record.chunks_sent == 3
    assert record.server_aborted
    assert not record.client_disconnected and not record.finished


def test_disconnect_after_makes_raw_line_iteration_raise_remote_protocol_error(fp, openai_client):
    fp.script(Reply(content="one two three four", disconnect_after=2))
    lines: list[str] = []
    params = {"model": MODEL, "messages": MESSAGES, "stream": True}

    # Raw lines bypass the SDK's wrapping, so the httpx2 transport error surfaces as is.
    with (
        pytest.raises(httpx2.RemoteProtocolError),
        openai_client.chat.completions.with_streaming_response.create(**params) as response,
    ):
        lines.extend(line for line in response.iter_lines() if line)

    assert len(lines) == 2
    assert json.loads(lines[1][6:])["choices"][0]["delta"]["content"] == "one "


def test_async_sdk_raises_the_same_classes_for_an_aborted_stream(fp):
    fp.script(Reply(disconnect_after=1), Reply(disconnect_after=1))
    params = {"model": MODEL, "messages": MESSAGES, "stream": True}

    async def consume() -> None:
        async with async_client(fp) as sdk:
            with pytest.raises(openai.APIConnectionError):
                async for _ in await sdk.chat.completions.create(**params):
                    pass
            with pytest.raises(httpx2.RemoteProtocolError):
                async with sdk.chat.completions.with_streaming_response.create(
                    **params
                ) as response:
                    async for _ in response.iter_lines():
                        pass

    asyncio.run(consume())


def test_closing_an_async_stream_early_is_recorded_as_client_disconnect(fp):
    fp.script(Reply(content="word " * 30, tokens_per_second=50))

    async def consume() -> int:
        async with async_client(fp) as sdk:
            stream = await sdk.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
            seen = 0
            async for chunk in stream:
                seen += bool(chunk.choices[0].delta.content)
                if seen == 2:
                    break
            await stream.close()
            return seen

    assert asyncio.run(consume()) == 2
    record = fp.wait_for_disconnect(timeout=2)
    assert record.client_disconnected
    assert not record.finished
    assert record.chunks_sent < 10
    assert record.ended_at is not None


def test_closing_a_raw_response_early_is_recorded_as_client_disconnect(fp, openai_client):
    fp.script(Reply(content="word " * 30, tokens_per_second=50))
    params = {"model": MODEL, "messages": MESSAGES, "stream": True}

    with openai_client.chat.completions.with_streaming_response.create(**params) as response:
        for line in response.iter_lines():
            if '"content":"word "' in line:
                break
        response.close()

    record = fp.wait_for_disconnect(timeout=2)
    assert not record.finished
    assert record.chunks_sent < 10


def test_a_disconnect_is_noticed_within_one_token_interval(fp, openai_client):
    interval = 0.2
    fp.script(Reply(content="slow " * 10, tokens_per_second=1 / interval))

    with openai_client.chat.completions.with_streaming_response.create(
        model=MODEL, messages=MESSAGES, stream=True
    ) as response:
        for line in response.iter_lines():
            if '"content":"slow "' in line:
                break
        closed_at = time.monotonic()
        response.close()

    record = fp.wait_for_disconnect(timeout=2)
    assert record.ended_at - closed_at < interval
    assert len(record.emit_times) == 1


def test_stall_with_short_read_timeout_raises_api_timeout_error_and_is_recorded(fp):
    fp.script(Reply(content="never finished", stall_after=2))

    with OpenAI(api_key="k", base_url=fp.base_url, max_retries=0, timeout=SHORT_READ) as sdk:
        started = time.monotonic()
        with pytest.raises(openai.APITimeoutError) as caught:
            stream_chunks(sdk)

    assert time.monotonic() - started < 2
    assert isinstance(caught.value.__cause__, httpx2.ReadTimeout)
    record = fp.wait_for_disconnect(timeout=2)
    assert record.stalled and record.chunks_sent == 2 and not record.finished


def test_stall_with_short_read_timeout_raises_read_timeout_on_raw_lines(fp):
    fp.script(Reply(content="never finished", stall_after=1), Reply(stall_after=1))

    with (
        OpenAI(api_key="k", base_url=fp.base_url, max_retries=0, timeout=SHORT_READ) as sdk,
        pytest.raises(httpx2.ReadTimeout),
    ):
        raw_data_lines(sdk)

    async def consume_async() -> None:
        async with async_client(fp, timeout=SHORT_READ) as sdk:
            with pytest.raises(httpx2.ReadTimeout):
                async with sdk.chat.completions.with_streaming_response.create(
                    model=MODEL, messages=MESSAGES, stream=True
                ) as response:
                    async for _ in response.iter_lines():
                        pass

    asyncio.run(consume_async())
    fp.wait_for(lambda p: len([s for s in p.streams if s.client_disconnected]) == 2, timeout=2)


def test_a_stalled_stream_notices_when_the_client_closes(fp, openai_client):
    fp.script(Reply(content="a b c", stall_after=2))
    params = {"model": MODEL, "messages": MESSAGES, "stream": True}

    with openai_client.chat.completions.with_streaming_response.create(**params) as response:
        for line in response.iter_lines():
            if '"content":"a "' in line:
                break
        fp.wait_for(lambda p: p.streams[0].stalled, timeout=2)
        response.close()

    record = fp.wait_for_disconnect(timeout=1)
    assert record.chunks_sent == 2


def test_a_stall_that_times_out_ends_the_stream_or_resumes_it(fp, openai_client):
    fp.script(
        Reply(content="a b c", stall_after=2, stall_seconds=0.2),
        Reply(content="a b c", stall_after=2, stall_seconds=0.2, resume_after_stall=True),
    )

    truncated = stream_chunks(openai_client)
    resumed = stream_chunks(openai_client)

    assert content_of(truncated) == "a "
    assert content_of(resumed) == "a b c"
    ended, completed = fp.streams
    assert ended.stalled and not ended.finished and not ended.client_disconnected
    assert completed.finished
    assert completed.emit_times[1] - completed.emit_times[0] >= 0.2


def test_reset_releases_a_stream_stalled_by_an_earlier_test(fp, openai_client):
    fp.script(Reply(stall_after=1, stall_seconds=30))
    outcome: list[BaseException] = []

    def consume() -> None:
        try:
            raw_data_lines(openai_client)
        except Exception as exc:
            outcome.append(exc)

    reader = threading.Thread(target=consume)
    reader.start()
    fp.wait_for_stream_start(timeout=2)
    fp.reset()
    reader.join(timeout=2)

    assert not reader.is_alive()
    assert isinstance(outcome[0], httpx2.RemoteProtocolError)


def test_reject_stream_options_gives_400_but_accepts_requests_without_them(fp, openai_client):
    fp.script(Reply(reject_stream_options=True), Reply(content="fine", reject_stream_options=True))

    with pytest.raises(openai.BadRequestError) as caught:
        stream_chunks(openai_client, stream_options={"include_usage": True})
    chunks = stream_chunks(openai_client)

    assert "stream_options" in caught.value.body["message"]
    assert content_of(chunks) == "fine"


def test_models_endpoint_lists_the_configured_models(fp, openai_client):
    assert [m.id for m in openai_client.models.list()] == ["fake-model", "fake-reasoner"]

    fp.models = ["deepseek-chat", "qwen-plus"]
    raw = httpx2.get(f"{fp.base_url}/models", headers={"Authorization": "Bearer test-key"}).json()

    assert raw["object"] == "list"
    assert [m["id"] for m in raw["data"]] == ["deepseek-chat", "qwen-plus"]
    assert all(m["object"] == "model" and "created" in m and "owned_by" in m for m in raw["data"])
    assert openai_client.models.retrieve("qwen-plus").id == "qwen-plus"
    with pytest.raises(openai.NotFoundError):
        openai_client.models.retrieve("fake-model")


def test_embeddings_in_base64_as_the_sdk_asks_by_default_are_the_fakes_vectors(fp, openai_client):
    texts = ["The cat sat on the mat.", "会议推迟到周五下午。"]
    response = openai_client.embeddings.create(model="fake-embedder", input=texts, dimensions=16)
    assert fp.embedding_requests[0].json["encoding_format"] == "base64"
    for item, text in zip(response.data, texts, strict=True):
        # float32 on the wire: equal to about seven digits.
        assert item.embedding == pytest.approx(embedding_vector(text, 16), abs=1e-6)
    assert response.usage.prompt_tokens == 6 + 9


def test_embeddings_fail_as_scripted_and_refuse_an_empty_input(fp, openai_client):
    fp.script_embeddings(EmbeddingReply(status=429, headers={"Retry-After": "0"}))
    with pytest.raises(openai.RateLimitError):
        openai_client.embeddings.create(model="fake-embedder", input=["hi"])
    with pytest.raises(openai.BadRequestError, match="empty string"):
        openai_client.embeddings.create(model="fake-embedder", input=["hi", ""])
    assert len(fp.embedding_requests) == 2


def test_recorded_request_json_equals_what_was_sent(fp, openai_client):
    messages = [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this picture? " * 4},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        },
    ]
    before = time.monotonic()

    chunks = stream_chunks(
        openai_client,
        messages=messages,
        temperature=0.3,
        max_tokens=64,
        stream_options={"include_usage": True},
    )

    (request,) = fp.wait_for_requests(1)
    assert request.json == {
        "model": MODEL,
        "messages": messages,
        "stream": True,
        "temperature": 0.3,
        "max_tokens": 64,
        "stream_options": {"include_usage": True},
    }
    assert (request.method, request.path) == ("POST", "/v1/chat/completions")
    assert request.headers["Authorization"] == "Bearer test-key"
    assert request.api_key == "test-key"
    assert before <= request.received_at <= time.monotonic()
    text_chars = len("Be brief.") + len("What is in this picture? " * 4)
    assert chunks[-1].usage.prompt_tokens == text_chars // 4


def test_non_streaming_completion_has_message_reasoning_and_usage(fp, openai_client):
    fp.script(Reply(content="Forty two.", reasoning="Think hard.", finish_reason="length"))

    completion = openai_client.chat.completions.create(model="fake-reasoner", messages=MESSAGES)

    assert completion.object == "chat.completion"
    assert completion.model == "fake-reasoner"
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content == "Forty two."
    assert choice.message.model_extra["reasoning_content"] == "Think hard."
    assert choice.finish_reason == "length"
    assert completion.usage.completion_tokens == 4
    assert completion.usage.completion_tokens_details.reasoning_tokens == 2
    assert fp.streams == []


def test_tokens_per_second_and_first_token_delay_pace_the_stream(fp, openai_client):
    fp.script(Reply(content="a b c d e", tokens_per_second=40, first_token_delay=0.15))

    started = time.monotonic()
    stream = openai_client.chat.completions.create(model=MODEL, messages=MESSAGES, stream=True)
    headers_at = time.monotonic()
    chunks = list(stream)

    # The headers arrive at once, so the delay is spent waiting for the first chunk.
    assert headers_at - started < 0.15
    assert content_of(chunks) == "a b c d e"
    emit_times = fp.streams[0].emit_times
    assert len(emit_times) == 5
    assert emit_times[0] - started >= 0.15
    gaps = [b - a for a, b in zip(emit_times, emit_times[1:], strict=False)]
    assert all(0.02 <= gap < 0.2 for gap in gaps)


def test_script_replaces_the_queue_enqueue_appends_and_the_default_fills_in(fp, openai_client):
    def ask() -> str:
        reply = openai_client.chat.completions.create(model=MODEL, messages=MESSAGES)
        return reply.choices[0].message.content

    fp.script(Reply(content="dropped"))
    fp.script(Reply(content="first"))
    fp.enqueue(Reply(content="second"))
    fp.default_reply = Reply(content="fallback")

    assert [ask(), ask(), ask()] == ["first", "second", "fallback"]
    fp.reset()
    assert ask() == "Hello from the fake provider."
    assert len(fp.chat_requests) == 1


def test_context_manager_runs_an_independent_server_and_frees_it_on_exit(fp):
    with FakeProvider() as other:
        assert other.base_url != fp.base_url
        other.script(Reply(content="from the other one"))
        with OpenAI(api_key="k", base_url=other.base_url, max_retries=0) as sdk:
            assert content_of(stream_chunks(sdk)) == "from the other one"
        assert len(other.requests) == 1
        url = other.base_url
    assert fp.requests == []
    with pytest.raises(httpx2.ConnectError):
        httpx2.get(f"{url}/models", timeout=1)
