"""Model and user text to safe HTML.

Markdown is rendered server-side (markdown-it-py, Pygments) and then sanitised with nh3, so
no script, event handler, `id`, `hx-*`/`data-hx-*` attribute, `javascript:` link or remote
image survives: model output can neither run code nor trigger an htmx request nor make the
browser fetch a URL.
"""

import json
from html import escape

import nh3
from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

_FORMATTER = HtmlFormatter(nowrap=True)


def _highlight(code: str, lang: str, _attrs: str) -> str:
    try:
        lexer = get_lexer_by_name(lang.strip()) if lang.strip() else None
    except ClassNotFound:
        lexer = None
    if lexer is None:
        return ""  # markdown-it escapes and wraps plain code itself
    return highlight(code, lexer, _FORMATTER)


_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False, "highlight": _highlight})
_MARKDOWN.enable(["table", "strikethrough"])

_TAGS = {
    "a", "b", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6",
    "hr", "i", "li", "ol", "p", "pre", "s", "span", "strong", "table", "tbody", "td", "th",
    "thead", "tr", "ul",
}  # fmt: skip
# No `img`: an image tag would make the browser fetch whatever URL the model chose.
_ATTRIBUTES = {"a": {"href", "title"}, "span": {"class"}, "code": {"class"}, "th": {"align"}}


def render_markdown(text: str) -> str:
    html = _MARKDOWN.render(text or "")
    return nh3.clean(
        html,
        tags=_TAGS,
        attributes=_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


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
