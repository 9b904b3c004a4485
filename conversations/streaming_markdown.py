"""A streaming reply's Markdown, rendered as it grows: the same HTML as the final render.

The reply's text is parsed with the final render's parser (conversations.rendering) and
split into its top-level blocks. A block is *committed* once the text after it can no
longer change it: it is rendered and sanitised once, and the page keeps it. The blocks
after the last committed one (the *tail*, usually one) are re-rendered from their whole
text at every fragment and replace the page's tail. Since every render starts from whole
text, a payload split across deltas (`<img src=x onerr` + `or=alert(1)>`, `[x](java` +
`script:...)`) is parsed as the final render would parse it, and goes through the same nh3
policy: a fragment cannot smuggle in what the whole could not.

When is a block safe to commit? Markdown decides a block's extent line by line, looking at
most one line past the block's start to see whether a new block interrupts it (a table
needs its delimiter row). So block j is committed once block j+1 has started and the two
lines from its start are complete (ended by a newline): later text can then neither merge
block j+1 into it nor turn it into something else. Link reference definitions are global:
a new one in the tail may change a committed link, so the whole reply is rendered afresh
(a new *epoch*) when one appears.

A fragment that only appends plain words to a top-level paragraph (the common case, and
every fragment of a reply without markup) skips the parser: its text is appended inside the
paragraph. That path is taken only where no Markdown rule could read the text differently
(see `_appends_plainly`); the tests check it against the whole render at random splits.
A tail longer than LONG_TAIL_CHARS is rendered again at most every LONG_TAIL_INTERVAL: a
huge paragraph re-parsed at every fragment would cost the square of its length. The text
between waits at its end as escaped words (safe, unformatted for that moment).

One renderer per reply, shared by every socket of this process (N sockets cost one render
per fragment), each socket remembering where its page stands (`Mark`). The page side is
static/js/streaming.js: a frame keeps the content's first K blocks and appends the rest.
"""

import re
import threading
import time
from collections import OrderedDict
from html import escape
from typing import NamedTuple

from markdown_it.common.utils import MD_TRIM_CHARS
from markdown_it.token import Token

from conversations.rendering import MARKDOWN, sanitise


class Mark(NamedTuple):
    """Where one page stands in a reply's render: what it has, so the next frame can say
    what to keep."""

    epoch: int
    blocks: int  # committed blocks on the page
    revision: int


# A page whose content came from elsewhere (a whole render from the database): the next
# frame replaces all of it.
UNKNOWN = Mark(epoch=-1, blocks=0, revision=-1)

# Text that no Markdown rule reads specially after a letter, a digit or a space: letters and
# digits (not `_`), spaces and a little punctuation. No newline, no `&` (entities), no `(`,
# `)` or `]` (links), no `*_~` (emphasis), no `$` or `\\` (math, escapes), no `<`, `"`.
_PLAIN = re.compile(r"(?:[^\W_]|[ ,.?'])*")
_PLAIN_END = re.compile(r"(?:[^\W_]|[ ,.?'])")
# A tail longer than this (characters) is rendered again at most every LONG_TAIL_INTERVAL
# seconds; the words between are appended as escaped text and formatted at the next render.
LONG_TAIL_CHARS = 4000
LONG_TAIL_INTERVAL = 0.5
# Blocks whose last paragraph words may be appended to, and what may close it.
_WORDS_BLOCKS = {"paragraph_open", "bullet_list_open", "ordered_list_open"}
_CLOSERS = {"paragraph_close", "list_item_close", "bullet_list_close", "ordered_list_close"}
_CLOSING_TAG = re.compile(r"</[a-z0-9]+>\n?")
# A list item's markers at the start of its first line ("1. ", "- ", "- 2) ").
_LIST_MARKERS = re.compile(r"^(?:[-+*]|\d{1,9}[.)])(?:[ \t]+(?:[-+*]|\d{1,9}[.)]))*[ \t]+")
# A line opening with digits can still become an ordered list item ("12" + ". item").
_LEADING_DIGITS = re.compile(r"\d+")


def _groups(tokens: list[Token]) -> list[tuple[int, int, int]]:
    """The top-level blocks of a token stream: (first token, end token, first line)."""
    groups, i = [], 0
    while i < len(tokens):
        start, depth = i, 0
        while True:
            depth += tokens[i].nesting
            i += 1
            if depth == 0:
                break
        where = tokens[start].map
        groups.append((start, i, where[0] if where else 0))
    return groups


def _render(tokens: list[Token], env: dict) -> str:
    return sanitise(MARKDOWN.renderer.render(tokens, MARKDOWN.options, env))


class StreamingMarkdown:
    """The live render of one reply's content. Content only grows; anything else starts a
    new epoch."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.source = ""  # the content rendered so far
        self.epoch = 0
        self.revision = 0
        self.blocks: list[str] = []  # committed blocks' HTML
        self.committed_end = 0  # where the text after the committed blocks starts
        self.committed_refs: dict = {}  # link references defined before committed_end
        self.tail_refs: dict = {}
        self.tail: list[str] = []  # the tail blocks' HTML
        # The last tail block ends in a paragraph's text at the end of the reply (a top-level
        # paragraph, or the last paragraph of a list's last item): the HTML after that text
        # (its closing tags) and how many elements deep it sits. None: no such paragraph.
        self.words_suffix: str | None = None
        self.words_depth = 0
        self._line_checked = False  # ...and its last line can no longer open a block
        # Words appended to that paragraph since it was last joined into self.tail[-1]:
        # appending must not copy a long paragraph's HTML at every fragment.
        self._words: list[str] = []
        self.appended = ""  # the last revision's text, when it only appended words
        # A long tail is rendered at most once per LONG_TAIL_INTERVAL (self.clock seconds);
        # text between waits as escaped words at its end.
        self.clock = time.monotonic
        self.rendered_at = -LONG_TAIL_INTERVAL
        self.unformatted = False  # the tail ends with such text, awaiting its render
        self._frames: dict[Mark, str] = {}
        # Block text -> HTML, of the last render's blocks.
        self._group_html: dict[str, str] = {}
        self._next_group_html: dict[str, str] = {}

    # --- the render -----------------------------------------------------------------

    def html(self) -> str:
        self._join_words()
        return "".join(self.blocks) + "".join(self.tail)

    def _join_words(self) -> None:
        if self._words:
            suffix = self.words_suffix or ""
            head = self.tail[-1][: len(self.tail[-1]) - len(suffix)]
            self.tail[-1] = head + "".join(self._words) + suffix
            self._words = []

    def advance(self, content: str) -> None:
        """Render `content`, which extends what was rendered (else: a new epoch)."""
        text = _normalised(content)
        if len(text) == len(self.source) and text == self.source:
            return
        if not _extends(text, self.source):
            self._restart()
        added = text[len(self.source) :]
        old, self.source = self.source, text
        self._frames = {}
        waits = self._long_tail_waits()
        if self.tail and not (self.unformatted and not waits) and self._appends_plainly(old, added):
            start = len(old.rstrip(MD_TRIM_CHARS))
            self._append_words(text[start : len(text.rstrip(MD_TRIM_CHARS))])
        elif waits:
            self.unformatted = True
            self._append_words(escape(added, quote=False))
        else:
            self.unformatted = False
            self.appended = ""
            self._line_checked = False
            self._words = []
            self._next_group_html = {}
            self._render_tail()
            self._group_html = self._next_group_html
            self.rendered_at = self.clock()
            self.revision += 1

    def _append_words(self, words: str) -> None:
        self.appended = words
        if words:
            self._words.append(words)
            self.revision += 1

    def _long_tail_waits(self) -> bool:
        """A long paragraph at the tail was rendered a moment ago: rendering it again at
        every fragment would cost the square of its length."""
        return (
            self.words_suffix is not None
            and len(self.source) - self.committed_end > LONG_TAIL_CHARS
            and self.clock() - self.rendered_at < LONG_TAIL_INTERVAL
        )

    def _restart(self) -> None:
        self.epoch += 1
        self.source, self.blocks, self.tail, self._words = "", [], [], []
        self.committed_end, self.committed_refs, self.tail_refs = 0, {}, {}
        self.words_suffix, self._line_checked, self.unformatted = None, False, False

    def _appends_plainly(self, old: str, added: str) -> bool:
        """`added` after `old` only lengthens the last paragraph's text: nothing before it
        or in it can read differently."""
        if self.words_suffix is None or not old or not _PLAIN.fullmatch(added):
            return False
        if not _PLAIN_END.fullmatch(old[-1]):
            return False  # a delimiter, entity or escape right before the new text
        if self._line_checked:  # words since the last render: the line's start is as it was
            return True
        self._line_checked = self._line_opens_nothing(old)
        return self._line_checked

    def _line_opens_nothing(self, old: str) -> bool:
        line = old[old.rfind("\n") + 1 :].lstrip(" ")
        if self.words_depth > 1:  # in a list item: the text after its markers
            line = _LIST_MARKERS.sub("", line, count=1)
        if not line or not _PLAIN_END.fullmatch(line[0]):
            return False  # the line could still open a block (`#`, `-`, `>`, `|`, ...)
        digits = _LEADING_DIGITS.match(line)
        if digits:
            # "12" or "12." could yet become an ordered list item; "12.5" or "12a" cannot.
            after = line[digits.end() :]
            if not after or (after[0] in ".)" and (len(after) == 1 or after[1] in " \t")):
                return False
        return True

    def _render_tail(self) -> None:
        region = self.source[self.committed_end :]
        env: dict = {"references": dict(self.committed_refs)}
        tokens = MARKDOWN.parse(region, env)
        refs = {k: v for k, v in env["references"].items() if k not in self.committed_refs}
        if refs != self.tail_refs:
            self._group_html = {}  # a tail block may link to it
            if self.blocks:  # and so may a committed one: render afresh
                source = self.source
                self._restart()
                self.source = source
                self._render_tail()
                return
        self.tail_refs = refs
        starts = _line_starts(region)
        groups = _groups(tokens)
        commit = _committable(groups, complete_lines=len(starts) - 1)
        rendered = [self._group(region, starts, tokens, group, env) for group in groups]
        self.blocks.extend(rendered[:commit])
        self.tail = rendered[commit:]
        if commit:
            self._commit_up_to(starts, tokens[groups[commit - 1][0]], refs)
        last = tokens[groups[-1][0] : groups[-1][1]] if groups else []
        self._find_words_target(last, ends_at=len(starts))

    def _find_words_target(self, last: list[Token], *, ends_at: int) -> None:
        """Where plain words may be appended without a parse: the end of the last block's
        last paragraph, when only closing tags follow it and it runs to the reply's end."""
        self.words_suffix, self.words_depth = None, 0
        inline = max((i for i, t in enumerate(last) if t.type == "inline"), default=-1)
        if inline < 0 or last[0].type not in _WORDS_BLOCKS:
            return
        closers = last[inline + 1 :]
        where = last[inline].map
        if not closers or any(t.type not in _CLOSERS for t in closers):
            return
        if where is None or where[1] != ends_at:
            return
        # The blocks' closing tags, after any of the text's own (`</em>`).
        depth = sum(not t.hidden for t in closers)
        tags = _CLOSING_TAG.findall(self.tail[-1][-40 * depth :])
        suffix = "".join(tags[-depth:])
        if len(tags) < depth or not self.tail[-1].endswith(suffix):
            return
        self.words_suffix, self.words_depth = suffix, depth

    def _group(self, region, starts, tokens, group, env) -> str:
        """One block's HTML; a block whose text is as it was last time is not rendered
        again (the blocks of a tail waiting to be committed)."""
        first, end, line = group
        last_line = tokens[first].map[1] if tokens[first].map else line + 1
        text = region[starts[line] : starts[last_line] if last_line < len(starts) else None]
        html = self._group_html.get(text)
        if html is None:
            html = _render(tokens[first:end], env)
        self._next_group_html[text] = html
        return html

    def _commit_up_to(self, starts: list[int], last_committed: Token, refs: dict) -> None:
        """Move the region's start past the committed blocks (after their last line), and
        keep the link definitions made before it."""
        end_line = last_committed.map[1] if last_committed.map else 0
        for label, ref in refs.items():
            if ref["map"][1] <= end_line:
                self.committed_refs[label] = ref
        self.tail_refs = {k: v for k, v in self.tail_refs.items() if k not in self.committed_refs}
        self.committed_end += starts[end_line] if end_line < len(starts) else starts[-1]

    # --- frames -------------------------------------------------------------------------

    def mark(self) -> Mark:
        return Mark(epoch=self.epoch, blocks=len(self.blocks), revision=self.revision)

    def frame(self, reply_uuid: str, page: Mark) -> str:
        """What brings a page at `page` to this render: '' when it is there already. Built
        once per revision and page position, shared by every socket there."""
        if page.epoch == self.epoch and page.revision == self.revision:
            return ""
        cached = self._frames.get(page)
        if cached is None:
            cached = self._frames[page] = self._build_frame(reply_uuid, page)
        return cached

    def _build_frame(self, reply_uuid: str, page: Mark) -> str:
        target = f"#m-{reply_uuid}-text"
        same_epoch = page.epoch == self.epoch
        if same_epoch and self.appended and page.revision == self.revision - 1:
            inner = target + " &gt; :last-child" * self.words_depth
            return f'<div hx-swap-oob="beforeend:{inner}">{self.appended}</div>'
        keep = page.blocks if same_epoch else 0
        self._join_words()
        html = "".join(self.blocks[keep:]) + "".join(self.tail)
        return f'<div hx-swap-oob="beforeend:{target}" data-keep="{keep}">{html}</div>'


def _extends(text: str, source: str) -> bool:
    """`text` continues `source`. A reply's content only grows, so the seam is compared
    rather than the whole (a long reply would copy its length at every fragment)."""
    if len(text) < len(source):
        return False
    seam = max(0, len(source) - 64)
    return text[seam : len(source)] == source[seam:]


def _normalised(content: str) -> str:
    """The text as the parser reads it (CR LF and CR as LF), without a trailing CR whose LF
    may be on its way."""
    if "\r" not in content:
        return content
    if content.endswith("\r"):
        content = content[:-1]
    return content.replace("\r\n", "\n").replace("\r", "\n")


def _line_starts(text: str) -> list[int]:
    """Where each line of `text` starts; the last entry is the (maybe empty) line after the
    last newline, so len() - 1 lines are complete."""
    starts, found = [0], text.find("\n")
    while found != -1:
        starts.append(found + 1)
        found = text.find("\n", found + 1)
    return starts


def _committable(groups: list[tuple[int, int, int]], *, complete_lines: int) -> int:
    """How many leading blocks later text can no longer change: those followed by a block
    whose first two lines are complete."""
    commit = 0
    for j in range(len(groups) - 1):
        if groups[j + 1][2] + 2 > complete_lines:
            break
        commit = j + 1
    return commit


class Renderers:
    """The live renders of this process's streaming replies, by reply: every socket on a
    reply shares one. Bounded: a reply whose end this process never saw ages out."""

    LIMIT = 512

    def __init__(self) -> None:
        self._by_reply: OrderedDict[str, StreamingMarkdown] = OrderedDict()
        self._lock = threading.Lock()

    def at(self, reply_uuid: str, content: str) -> StreamingMarkdown:
        """The reply's render, brought up to `content` (a render ahead of `content`, as a
        socket's older event may find it, is left ahead: content only grows)."""
        with self._lock:
            renderer = self._by_reply.get(reply_uuid)
            if renderer is None:
                renderer = self._by_reply[reply_uuid] = StreamingMarkdown()
                while len(self._by_reply) > self.LIMIT:
                    self._by_reply.popitem(last=False)
            else:
                self._by_reply.move_to_end(reply_uuid)
        text = _normalised(content)
        with renderer.lock:
            if len(text) > len(renderer.source) or not _extends(renderer.source, text):
                renderer.advance(text)
        return renderer

    def forget(self, reply_uuid: str) -> None:
        with self._lock:
            self._by_reply.pop(reply_uuid, None)

    def reset(self) -> None:
        with self._lock:
            self._by_reply.clear()


renderers = Renderers()


def render_streaming(content: str) -> str:
    """The whole live render of `content`, from nothing (what a fresh page shows)."""
    renderer = StreamingMarkdown()
    renderer.advance(content)
    return renderer.html()
