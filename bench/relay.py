"""The floor: fake-provider SSE relayed to websocket clients as htmx fragments, no Django.

It does the least any relay must: read the SSE lines, json.loads each, push every delta as
the same fragment chatsite sends. No auth, no database, no coalescing.
"""

import argparse
import json
import uuid
from html import escape

from aiohttp import ClientSession, ClientTimeout, TCPConnector, WSMsgType, web

ARTICLE = (
    '<article class="message" id="m-{id}" data-role="assistant" data-status="{status}">'
    '<div id="m-{id}-text">{text}</div></article>'
)


async def socket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for message in ws:
        if message.type != WSMsgType.TEXT:
            continue
        data = json.loads(message.data)
        if data.get("action") == "send":
            await relay(request.app, ws, data["message"])
    return ws


async def relay(app: web.Application, ws: web.WebSocketResponse, prompt: str) -> None:
    reply_id = uuid.uuid4()
    await ws.send_str(ARTICLE.format(id=reply_id, status="streaming", text=""))
    body = {
        "model": "fake-model",
        "messages": [{"role": "user", "content": prompt}],
        "stream": True,
    }
    parts = []
    async with app["session"].post(app["provider"], json=body) as response:
        async for line in response.content:
            if not line.startswith(b"data: {"):
                continue
            for choice in json.loads(line[6:])["choices"]:
                if text := choice["delta"].get("content"):
                    parts.append(text)
                    await ws.send_str(
                        f'<div hx-swap-oob="beforeend:#m-{reply_id}-text">{escape(text)}</div>'
                    )
    text = escape("".join(parts))
    await ws.send_str(ARTICLE.format(id=reply_id, status="complete", text=text))


async def open_session(app: web.Application):
    connector = TCPConnector(limit=0)
    app["session"] = ClientSession(connector=connector, timeout=ClientTimeout(total=None))
    yield
    await app["session"].close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--provider", required=True, help="base URL ending in /v1")
    args = parser.parse_args()
    app = web.Application()
    app["provider"] = args.provider + "/chat/completions"
    app.cleanup_ctx.append(open_session)
    app.router.add_get("/ws/c/{id}/", socket)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
