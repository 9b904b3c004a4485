"""A tiny stand-in for the browser: applies chatsite's websocket fragments as htmx would.

Only the fragment shapes chatsite sends are understood: whole messages (swapped by id),
messages appended to #messages, the whole thread replaced (a new branch on screen), text
appended to a reply's content or reasoning, and the header's context gauge (by id).
Tests use it to check exactly what a user would see after any sequence of frames.
"""

import re
from dataclasses import dataclass
from html import unescape

_ARTICLE = re.compile(r"<article\b[^>]*\bid=\"m-([0-9a-f-]+)\"[^>]*>.*?</article>", re.S)
_STATUS = re.compile(r'data-status="([a-z]+)"')
_ROLE = re.compile(r'data-role="([a-z]+)"')
_APPEND = re.compile(
    r'<div hx-swap-oob="beforeend:#m-([0-9a-f-]+)-(text|reasoning)">(.*?)</div>', re.S
)
_TAG = re.compile(r"<[^>]+>")
_THREAD_REPLACED = '<div id="messages" hx-swap-oob="innerHTML">'
_GAUGE = re.compile(r'<details class="context-gauge[^"]*" id="context-gauge".*?</details>', re.S)


@dataclass
class MessageOnPage:
    uuid: str
    role: str
    status: str
    text: str
    reasoning: str
    html: str


def _inner(html: str, uuid: str, part: str) -> str:
    match = re.search(rf'id="m-{uuid}-{part}">(.*?)</div>', html, re.S)
    return match.group(1) if match else ""


def _plain(fragment: str) -> str:
    return unescape(_TAG.sub("", fragment))


class PageModel:
    def __init__(self) -> None:
        self.messages: dict[str, MessageOnPage] = {}
        self.order: list[str] = []
        self.notices: list[str] = []
        self.frames: list[str] = []
        self.replacements = 0
        # The context gauge's HTML as last pushed, and how many pushes carried it.
        self.gauge = ""
        self.gauge_pushes = 0

    def apply(self, frame: str) -> None:
        self.frames.append(frame)
        if 'id="notice"' in frame:
            self.notices.append(_plain(frame).strip())
        if frame.startswith(_THREAD_REPLACED):
            self.messages, self.order = {}, []
            self.replacements += 1
        for gauge in _GAUGE.findall(frame):
            self.gauge = gauge
            self.gauge_pushes += 1
        for match in _ARTICLE.finditer(frame):
            self._swap_message(match.group(1), match.group(0))
        for uuid, part, text in _APPEND.findall(frame):
            message = self.messages[uuid]  # htmx: no target, nothing happens; here: a bug
            if part == "text":
                message.text += unescape(text)
            else:
                message.reasoning += unescape(text)

    def _swap_message(self, uuid: str, html: str) -> None:
        if uuid not in self.messages:
            self.order.append(uuid)
        self.messages[uuid] = MessageOnPage(
            uuid=uuid,
            role=_ROLE.search(html).group(1),
            status=_STATUS.search(html).group(1),
            text=_plain(_inner(html, uuid, "text")),
            reasoning=_plain(_inner(html, uuid, "reasoning")),
            html=html,
        )

    def thread(self) -> list[MessageOnPage]:
        return [self.messages[uuid] for uuid in self.order]

    def last(self, role: str = "assistant") -> MessageOnPage | None:
        for uuid in reversed(self.order):
            if self.messages[uuid].role == role:
                return self.messages[uuid]
        return None
