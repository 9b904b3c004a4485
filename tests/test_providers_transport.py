"""The provider seam on its own: which failures are retried, how, and how often."""

import asyncio
import json
import socket

import pytest

from conversations.errors import (
    ProviderAuthFailed,
    ProviderConnectionLost,
    ProviderRateLimited,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
)
from conversations.providers import timeouts, transport
from tests.fake_provider import Reply


def _request(base_url: str, **fields) -> transport.ChatRequest:
    return transport.ChatRequest(
        base_url=base_url,
        api_key="test-key",
        model="fake-model",
        messages=[{"role": "user", "content": "Hi"}],
        **fields,
    )


async def _drain(request: transport.ChatRequest) -> list:
    return [event async for event in transport.stream_chat(request)]


def _closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, ProviderRejected),
        (401, ProviderAuthFailed),
        (403, ProviderAuthFailed),
        (404, ProviderRejected),
    ],
)
async def test_client_errors_are_never_retried(fake_provider, status, error):
    fake_provider.script(Reply(status=status, headers={"Retry-After": "0"}), Reply())
    request = _request(fake_provider.base_url)
    with pytest.raises(error):
        await _drain(request)
    assert len(fake_provider.chat_requests) == 1
    assert request.attempts == 1


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503])
async def test_retryable_statuses_are_sent_again_then_succeed(fake_provider, status):
    fake_provider.script(Reply(status=status, headers={"Retry-After": "0"}), Reply(content="Ok."))
    request = _request(fake_provider.base_url)
    events = await _drain(request)
    assert transport.ContentDelta("Ok.") in events
    assert len(fake_provider.chat_requests) == 2
    assert request.attempts == 2


async def test_retry_after_is_honoured_before_the_next_attempt(fake_provider):
    fake_provider.script(Reply(status=429, headers={"Retry-After": "1"}), Reply())
    await _drain(_request(fake_provider.base_url))
    first, second = fake_provider.chat_requests
    assert second.received_at - first.received_at >= 0.9


async def test_retry_count_comes_from_settings(fake_provider, settings):
    settings.PROVIDER_MAX_RETRIES = 0
    limited = Reply(status=429, headers={"Retry-After": "0"})
    fake_provider.script(limited, Reply())
    with pytest.raises(ProviderRateLimited):
        await _drain(_request(fake_provider.base_url))
    assert len(fake_provider.chat_requests) == 1


async def test_connection_refused_is_retried_before_the_stream_starts(settings):
    settings.PROVIDER_MAX_RETRIES = 1
    request = _request(_closed_port_url())
    with pytest.raises(ProviderUnavailable):
        await _drain(request)
    assert request.attempts == 2, "the first try and one retry"


async def test_a_stream_cut_after_it_began_is_not_sent_again(fake_provider):
    fake_provider.script(Reply(content=[f"w{i} " for i in range(10)], disconnect_after=4), Reply())
    request = _request(fake_provider.base_url)
    with pytest.raises(ProviderConnectionLost):
        await _drain(request)
    assert len(fake_provider.chat_requests) == 1


async def test_a_server_that_never_sends_usage_yields_no_usage_event(fake_provider):
    fake_provider.script(Reply(content="Ok.", usage=None))
    events = await _drain(_request(fake_provider.base_url))
    assert fake_provider.chat_requests[0].json["stream_options"] == {"include_usage": True}
    assert not any(isinstance(event, transport.Usage) for event in events)


async def test_provider_fields_go_into_the_body_next_to_the_messages(fake_provider):
    request = _request(fake_provider.base_url, body_fields={"enable_thinking": False})
    await _drain(request)
    body = fake_provider.chat_requests[0].json
    assert body["enable_thinking"] is False
    assert body["messages"] == [{"role": "user", "content": "Hi"}]


async def test_replies_one_after_another_reuse_one_connection(fake_provider):
    fake_provider.script(Reply(content="One."), Reply(content="Two."), Reply(content="Three."))
    for _ in range(3):
        events = await _drain(_request(fake_provider.base_url))
        assert isinstance(events[-1], transport.Usage)  # every reply whole
    ports = {request.client_port for request in fake_provider.chat_requests}
    assert len(fake_provider.chat_requests) == 3 and len(ports) == 1, ports


# --- read timeouts: silence, not length -------------------------------------------------


async def test_a_slow_stream_that_never_falls_silent_is_read_whole(fake_provider, settings):
    settings.PROVIDER_READ_TIMEOUT = 0.4
    tokens = [f"t{i} " for i in range(8)]  # 1.6 s in all, never 0.4 s without a byte
    fake_provider.script(Reply(content=tokens, tokens_per_second=5))
    events = await _drain(_request(fake_provider.base_url))
    assert [e.text for e in events if isinstance(e, transport.ContentDelta)] == tokens


async def test_the_sdk_private_names_the_transport_reads_are_still_there(fake_provider):
    # providers/transport.py reads a body straight from aiohttp: the response it finds
    # under httpx2's wrappers, and the SDK's mapping of aiohttp's errors.
    from openai._vendor.httpx_aiohttp.transport import map_aiohttp_exceptions

    assert callable(map_aiohttp_exceptions)
    watch = asyncio.create_task(timeouts.watch_of_loop().run())
    await asyncio.sleep(0)
    fake_provider.script(Reply(content=["a", "b", "c"], tokens_per_second=20))
    watched = [
        len(timeouts.watch_of_loop())
        async for _ in transport.stream_chat(_request(fake_provider.base_url))
    ]
    watch.cancel()
    assert set(watched) == {1}, "the body was read from aiohttp, under the loop's watch"


async def test_a_body_that_falls_silent_times_out_within_about_the_read_timeout(
    fake_provider, settings
):
    settings.PROVIDER_READ_TIMEOUT = 0.4
    fake_provider.script(Reply(content=[f"t{i} " for i in range(8)], stall_after=3))
    # A serving process's supervisor runs the watch; here the test runs it.
    watch = asyncio.create_task(timeouts.watch_of_loop().run())
    await asyncio.sleep(0)
    watched_while_streaming = []
    started = asyncio.get_running_loop().time()
    with pytest.raises(ProviderTimeout):
        async for _ in transport.stream_chat(_request(fake_provider.base_url)):
            watched_while_streaming.append(len(timeouts.watch_of_loop()))
    waited = asyncio.get_running_loop().time() - started
    assert 0.4 <= waited < 1.5
    # The body was the loop's watch's to time out, and is forgotten once it ended.
    assert watched_while_streaming and set(watched_while_streaming) == {1}
    assert len(timeouts.watch_of_loop()) == 0
    watch.cancel()
    # The connection is closed, not pooled: the provider sees its client go.
    await asyncio.to_thread(fake_provider.wait_for_disconnect, timeout=5)


# --- SSE framing, byte by byte ---------------------------------------------------------


class RawSSEServer:
    """An HTTP server that answers every request with `pieces` of an SSE body, each sent
    on its own, so a test decides where the stream's chunks end."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces
        self.server = None

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._answer, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1"

    async def __aexit__(self, *exc_info) -> None:
        self.server.close()

    async def _answer(self, reader, writer) -> None:
        while (await reader.readline()) not in (b"\r\n", b""):
            pass  # headers; the body is not needed
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
        )
        for piece in self.pieces:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.01)  # its own TCP segment, its own chunk
        writer.close()


def _data(delta: dict, finish: str | None = None) -> bytes:
    chunk = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\n\n"


async def test_lines_split_across_chunks_and_crlf_endings_are_read_whole():
    body = _data({"content": "Hello, "}) + _data({"content": "世界"}).replace(b"\n", b"\r\n")
    body += _data({}, "stop") + b"data: [DONE]"  # the last line has no newline
    # Cut inside the JSON, inside a multi-byte character and between \r and \n.
    cuts = [10, body.index("世".encode()) + 1, body.index(b"\r\n") + 1, len(body) - 3]
    pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
    async with RawSSEServer(pieces) as base_url:
        events = await _drain(_request(base_url, include_usage=False))
    assert events == [
        transport.ContentDelta("Hello, "),
        transport.ContentDelta("世界"),
        transport.Finish("stop"),
    ]


@pytest.mark.parametrize("body", [b"data: {}\n\n", b"<html>Bad gateway</html>", b"[1, 2]"])
async def test_a_completion_that_is_not_a_json_object_is_a_clear_error(body):
    request = _request("", include_usage=False)
    async with RawSSEServer([body]) as base_url:
        request.base_url = base_url
        with pytest.raises(ProviderRejected, match="malformed response"):
            await transport.complete_chat(request)
    assert request.attempts == 1  # counted: the ledger records it


async def test_a_stream_of_invalid_utf8_is_a_clear_error():
    pieces = [_data({"content": "ok"}), b'data: {"choices": [{"delta": {"content": "\xff"}}]}\n\n']
    async with RawSSEServer(pieces) as base_url:
        with pytest.raises(ProviderRejected, match="malformed stream"):
            await _drain(_request(base_url, include_usage=False))
