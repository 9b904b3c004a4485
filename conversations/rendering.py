"""Model and user text to safe HTML.

Markdown is rendered server-side (markdown-it-py, Pygments) and then sanitised with nh3, so
no script, event handler, `id`, `hx-*`/`data-hx-*` attribute, `javascript:` link or remote
image survives: model output can neither run code nor trigger an htmx request nor make the
browser fetch a URL.

Math (`$...$`, `$$...$$`, `\\(...\\)`, `\\[...\\]`) is kept away from Markdown and emitted as
escaped TeX inside `<span class="math-inline">` / `<span class="math-display">`; the page's
static/js/enhance.js typesets those with KaTeX, reading the element's text, never HTML.
"""

import functools
import json
from html import escape

import nh3
from markdown_it import MarkdownIt
from markdown_it.common.utils import escapeHtml
from markdown_it.rules_block import StateBlock
from markdown_it.rules_core import StateCore
from markdown_it.rules_inline import StateInline
from mdit_py_plugins.dollarmath import dollarmath_plugin
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import get_lexer_by_name
from pygments.token import STANDARD_TYPES
from pygments.util import ClassNotFound

_FORMATTER = HtmlFormatter(nowrap=True)


@functools.lru_cache(maxsize=64)
def _lexer(name: str) -> Lexer | None:
    # Looking a name up walks every lexer Pygments has (~2 ms); a live reply's code block
    # is highlighted again at each fragment.
    try:
        return get_lexer_by_name(name) if name else None
    except ClassNotFound:
        return None


def _highlight(code: str, lang: str, _attrs: str) -> str:
    lexer = _lexer(lang.strip())
    if lexer is None:
        return ""  # markdown-it escapes and wraps plain code itself
    return highlight(code, lexer, _FORMATTER)


# --- Math ------------------------------------------------------------------------------
# The TeX goes out as the escaped text of an element with one of these classes, nothing else:
# the browser typesets the element's textContent, so TeX can never become markup.
MATH_INLINE = "math-inline"
MATH_DISPLAY = "math-display"


def _math_html(tex: str, *, display: bool) -> str:
    # A span for display math too (styled as a block): it is valid inside a paragraph, and
    # the message's content <div> keeps no nested </div> (tests/page_model.py reads it).
    css_class = MATH_DISPLAY if display else MATH_INLINE
    return f'<span class="{css_class}">{escapeHtml(tex.strip())}</span>'


def _render_inline_math(_self, tokens, idx, _options, _env) -> str:
    return _math_html(tokens[idx].content, display=False)


def _render_display_math(_self, tokens, idx, _options, _env) -> str:
    html = _math_html(tokens[idx].content, display=True)
    return html + "\n" if tokens[idx].block else html


def _closer_after(state: StateInline, closer: str, start: int) -> int:
    """Where `closer` next occurs in this inline run, or -1. Remembers a run with no closer
    left, so a reply full of unclosed `\\(` costs one scan, not one per opener."""
    exhausted = state.env.setdefault("math_exhausted", set())
    key = (closer, state.src, state.posMax)
    if key in exhausted:
        return -1
    end = state.src.find(closer, start, state.posMax)
    if end == -1:
        exhausted.add(key)
    return end


def _bracket_math_inline(state: StateInline, silent: bool) -> bool:
    """`\\(...\\)` inline and `\\[...\\]` display math inside a paragraph. Runs before the
    escape rule, which would otherwise turn `\\(` into `(`."""
    pos = state.pos
    if state.src[pos] != "\\" or pos + 1 >= state.posMax or state.src[pos + 1] not in "([":
        return False
    display = state.src[pos + 1] == "["
    end = _closer_after(state, "\\]" if display else "\\)", pos + 2)
    if end == -1 or not state.src[pos + 2 : end].strip():
        return False
    if not silent:
        token = state.push("math_inline_double" if display else "math_inline", "math", 0)
        token.content = state.src[pos + 2 : end]
        token.markup = state.src[pos : pos + 2]
    state.pos = end + 2
    return True


_BLOCK_DELIMITERS = {"$$": "$$", "\\[": "\\]"}


def _math_block(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    """`$$` or `\\[` at the start of a line, up to a line ending with `$$` or `\\]`: the lines
    between are TeX, never Markdown. The math stays inside the enclosing block (a list item,
    a quote) and has no blank line, so an unclosed opener costs a short scan and cannot
    swallow the rest of the reply. (dollarmath's own block rule scans to the end of the
    reply from every list item: quadratic.)"""
    if state.sCount[start] - state.blkIndent >= 4:
        return False  # an indented code block
    first = state.src[state.bMarks[start] + state.tShift[start] : state.eMarks[start]].rstrip()
    closer = _BLOCK_DELIMITERS.get(first[:2])
    if closer is None or closer in first[2:-2]:
        return False  # not an opener, or closed mid-line: inline math in a paragraph
    body, line = [first[2:]], start
    while not body[-1].endswith(closer):
        line += 1
        if line >= end or state.isEmpty(line) or state.sCount[line] < state.blkIndent:
            return False
        body.append(
            state.src[state.bMarks[line] + state.tShift[line] : state.eMarks[line]].rstrip()
        )
    tex = "\n".join(body)[:-2]
    if not tex.strip():
        return False
    if not silent:
        token = state.push("math_block", "math", 0)
        token.block = True
        token.content = tex
        token.markup = first[:2]
        token.map = [start, line + 1]
    state.line = line + 1
    return True


def _math_plugin(md: MarkdownIt) -> None:
    # Inline dollars as Pandoc reads them: no space inside the delimiters and no digit right
    # after the closing one, so "$5 and $10" stays prose. Blocks are `_math_block`'s.
    md.use(
        dollarmath_plugin,
        allow_labels=False,
        allow_space=False,
        allow_digits=False,
        allow_blank_lines=False,
        double_inline=True,
    )
    md.block.ruler.disable("math_block")
    md.block.ruler.before("fence", "math_block_delimited", _math_block)
    md.inline.ruler.before("escape", "math_brackets", _bracket_math_inline)
    md.add_render_rule("math_inline", _render_inline_math)
    md.add_render_rule("math_inline_double", _render_display_math)
    md.add_render_rule("math_block", _render_display_math)


# --- Tables ----------------------------------------------------------------------------
# markdown-it aligns cells with style="text-align:..."; the CSP forbids inline styles, so the
# alignment travels as a class instead (static/css/enhance.css styles it).
_ALIGN_CLASSES = {f"text-align:{side}": f"align-{side}" for side in ("left", "center", "right")}


def _table_alignment_as_class(state: StateCore) -> None:
    for token in state.tokens:
        if token.type in ("th_open", "td_open") and "style" in token.attrs:
            side = _ALIGN_CLASSES.get(str(token.attrs.pop("style")))
            if side:
                token.attrSet("class", side)


# The parser of every render, final or live (conversations/streaming_markdown.py).
MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False, "highlight": _highlight})
MARKDOWN.enable(["table", "strikethrough"])
MARKDOWN.use(_math_plugin)
MARKDOWN.core.ruler.push("table_alignment_as_class", _table_alignment_as_class)

_TAGS = {
    "a", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "i", "li", "ol", "p", "pre", "s", "span", "strong", "table", "tbody", "td", "th",
    "thead", "tr", "ul",
}  # fmt: skip
# No `img`: an image tag would make the browser fetch whatever URL the model chose.
_ATTRIBUTES = {"a": {"href", "title"}, "code": {"class"}}
# A span may carry Pygments' token classes (what static/css/pygments.css styles) and the two
# math classes, nothing else: no other class can make page script treat text as math.
_CLASSES = {
    "span": {c for c in STANDARD_TYPES.values() if c} | {MATH_INLINE, MATH_DISPLAY},
    "th": set(_ALIGN_CLASSES.values()),
    "td": set(_ALIGN_CLASSES.values()),
}


# Built once: a live reply is sanitised at every fragment, and building the policy each
# call cost as much as cleaning a paragraph.
_CLEANER = nh3.Cleaner(
    tags=_TAGS,
    attributes=_ATTRIBUTES,
    allowed_classes=_CLASSES,
    url_schemes={"http", "https", "mailto"},
    link_rel="noopener noreferrer nofollow",
)


def sanitise(html: str) -> str:
    """Rendered Markdown through the one policy: what may reach a page of model output."""
    return _CLEANER.clean(html)


def render_markdown(text: str) -> str:
    return sanitise(MARKDOWN.render(text or ""))


def is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def render_json(text: str) -> str:
    """A JSON-mode reply: pretty-printed when it parses, else the raw text, escaped (the
    template flags it as invalid: a broken reply is shown, never hidden)."""
    try:
        pretty = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        pretty = text
    return f'<pre class="json-reply"><code class="language-json">{escape(pretty)}</code></pre>'
