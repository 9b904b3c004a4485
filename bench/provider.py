"""A lean fake provider for load: chat-completions SSE, paced, each token its own timestamp.

tests/fake_provider.py scripts replies for tests and records everything under a lock; at
10,000 tokens a second that bookkeeping would be the bottleneck. This server speaks the same
wire format, but a token's text is `time.monotonic()` at the moment it was written, so any
client on this machine (CLOCK_MONOTONIC is system-wide) measures emit -> receive latency
without talking to the provider. The last user message says what to stream: "n=80 tps=20".
Non-streamed calls (the summaries the app asks for as conversations grow) get a short reply.
"""

import argparse
import asyncio
import json
import re
import time

from aiohttp import web

PARAMS = re.compile(r"n=(\d+) tps=([\d.]+)")
HEAD = '{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":0,"model":"fake-model",'
CHOICE = '"choices":[{"index":0,"delta":%s,"finish_reason":%s}]}\n\n'
ROLE = "data: " + HEAD + CHOICE % ('{"role":"assistant","content":""}', "null")
TOKEN = "data: " + HEAD + CHOICE % ('{"content":"%.6f "}', "null")
FINISH = "data: " + HEAD + CHOICE % ("{}", '"stop"')
USAGE = (
    "data: " + HEAD + '"choices":[],"usage":'
    '{"prompt_tokens":%d,"completion_tokens":%d,"total_tokens":%d}}\n\n'
)


def _params(body: dict) -> tuple[int, float]:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user" and (match := PARAMS.search(message["content"])):
            return int(match.group(1)), float(match.group(2))
    return 20, 0.0


def _completion(body: dict) -> web.Response:
    """A whole reply, for the app's non-streamed calls (summaries): short and at once."""
    text = f"Summary of {len(body.get('messages') or [])} messages."
    return completion(body, text, prompt_tokens=100, completion_tokens=5)


def completion(body: dict, text: str, *, prompt_tokens: int, completion_tokens: int):
    """A non-streamed chat completion carrying `text`, with its usage."""
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    message = {"role": "assistant", "content": text}
    return web.json_response(
        {
            "id": "chatcmpl-bench",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model") or "fake-model",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": usage,
        }
    )


async def chat(request: web.Request) -> web.StreamResponse:
    body = json.loads(await request.read())
    if not body.get("stream"):
        return _completion(body)
    count, tps = _params(body)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(ROLE.encode())
    loop = asyncio.get_running_loop()
    start, interval = loop.time(), 1 / tps if tps else 0.0
    for i in range(count):
        # An absolute schedule: a late wake-up does not delay every later token.
        delay = start + i * interval - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        await response.write((TOKEN % time.monotonic()).encode())
    await response.write(FINISH.encode())
    if (body.get("stream_options") or {}).get("include_usage"):
        await response.write((USAGE % (10, count, 10 + count)).encode())
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    # reuse_port: several provider processes may share the port; the kernel spreads clients.
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None, reuse_port=True)


if __name__ == "__main__":
    main()
