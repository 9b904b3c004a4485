"""A tiny stand-in for the browser: applies chatsite's websocket fragments as htmx would.

Only the fragment shapes chatsite sends are understood: whole messages (swapped by id),
messages appended to #messages, the whole thread replaced (a new branch on screen), text
appended to a reply's reasoning, a streaming reply's Markdown (words appended to its last
block, or its first K blocks kept and the rest appended, as static/js/streaming.js does),
and the header's context gauge (by id).
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
# A streaming reply's content: words into its last block, or blocks after the first K.
_APPEND_WORDS = re.compile(
    r'<div hx-swap-oob="beforeend:#m-([0-9a-f-]+)-text((?: &gt; :last-child)+)">(.*?)</div>',
    re.S,
)
_CLOSING_TAG = re.compile(r"</[a-z0-9]+>\n?")
_KEEP_BLOCKS = re.compile(
    r'<div hx-swap-oob="beforeend:#m-([0-9a-f-]+)-text" data-keep="(\d+)">(.*?)</div>', re.S
)
_TAG = re.compile(r"<[^>]+>")
_TAG_NAME = re.compile(r"<(/?)([a-z0-9]+)(?:[^>\"]|\"[^\"]*\")*?(/?)>")
_VOID = {"br", "hr", "img"}
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
    # The content's HTML (what static/js/streaming.js edits while a reply streams).
    content_html: str = ""


def _inner(html: str, uuid: str, part: str) -> str:
    match = re.search(rf'id="m-{uuid}-{part}">(.*?)</div>', html, re.S)
    return match.group(1) if match else ""


def _plain(fragment: str) -> str:
    return unescape(_TAG.sub("", fragment))


def block_ends(html: str) -> list[int]:
    """Where each top-level element of sanitised HTML ends (its newline included)."""
    ends, depth = [], 0
    for match in _TAG_NAME.finditer(html):
        closing, name, self_closing = match.groups()
        change = 0 if name in _VOID or self_closing else -1 if closing else 1
        depth += change
        if depth == 0 and (change == -1 or name in _VOID):
            end = match.end()
            ends.append(end + 1 if html[end : end + 1] == "\n" else end)
    return ends


def _keep_blocks(html: str, keep: int) -> str:
    ends = block_ends(html)
    return html[: ends[keep - 1]] if keep else ""


def _append_to_last_block(html: str, words: str, depth: int) -> tuple[str, str]:
    """The HTML with `words` at the end of its last block's innermost last element,
    `depth` levels down (before as many closing tags), and the HTML after them."""
    window = max(0, len(html) - 60 * depth)
    close = list(_CLOSING_TAG.finditer(html, window))[-depth].start()
    return html[:close] + words + html[close:], html[close:]


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
        for uuid, levels, words in _APPEND_WORDS.findall(frame):
            message = self.messages[uuid]
            depth = levels.count(":last-child")
            message.content_html, after = _append_to_last_block(message.content_html, words, depth)
            kept = len(message.text) - len(_plain(after))
            message.text = message.text[:kept] + unescape(words) + message.text[kept:]
        for uuid, keep, blocks in _KEEP_BLOCKS.findall(frame):
            message = self.messages[uuid]
            message.content_html = _keep_blocks(message.content_html, int(keep)) + blocks
            message.text = _plain(message.content_html)

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
            content_html=_inner(html, uuid, "text"),
        )

    def thread(self) -> list[MessageOnPage]:
        return [self.messages[uuid] for uuid in self.order]

    def last(self, role: str = "assistant") -> MessageOnPage | None:
        for uuid in reversed(self.order):
            if self.messages[uuid].role == role:
                return self.messages[uuid]
        return None
