"""Markdown to safe HTML: math kept away from Markdown, tables, code, and the copy button.

The sanitiser against script, htmx attributes and remote fetches is tested on every path in
test_security.py; here: what math becomes, and that hostile math can only ever be text.
"""

import re
import time
from html.parser import HTMLParser

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from conversations.models import MessageStatus, Role
from conversations.presenters import MessageView, render_message
from conversations.rendering import render_markdown

MATH_CLASSES = {"math-inline", "math-display"}


class _Element:
    def __init__(self, tag: str, attrs: dict[str, str | None]) -> None:
        self.tag, self.attrs, self.text, self.children = tag, attrs, "", 0


class _Tree(HTMLParser):
    """Every element of a fragment with its attributes, text and number of child elements."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[_Element] = []
        self.open: list[_Element] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        element = _Element(tag, dict(attrs))
        if self.open:
            self.open[-1].children += 1
        self.elements.append(element)
        if tag not in {"br", "hr"}:
            self.open.append(element)

    def handle_endtag(self, tag):
        if self.open and self.open[-1].tag == tag:
            self.open.pop()

    def handle_data(self, data):
        for element in self.open:
            element.text += data

    def math(self) -> list[_Element]:
        return [e for e in self.elements if MATH_CLASSES & set(e.attrs.get("class", "").split())]


def math_of(html: str) -> list[tuple[str, str]]:
    """(class, TeX) of each math element, in order."""
    return [(e.attrs["class"], e.text) for e in _Tree(html).math()]


# --- What math becomes -----------------------------------------------------------------


@pytest.mark.parametrize(
    "text,expected",
    [
        ("Energy: $E=mc^2$.", [("math-inline", "E=mc^2")]),
        ("Energy: \\(E=mc^2\\).", [("math-inline", "E=mc^2")]),
        ("$$\\int_0^1 x\\,dx$$", [("math-display", "\\int_0^1 x\\,dx")]),
        ("$$\n\\sum_{i=1}^n i\n$$", [("math-display", "\\sum_{i=1}^n i")]),
        ("\\[\n\\frac{a}{b}\n\\]", [("math-display", "\\frac{a}{b}")]),
        ("so \\[x^2\\] inline", [("math-display", "x^2")]),
        ("so $$x^2$$ inline", [("math-display", "x^2")]),
        ("$a$ and $b$", [("math-inline", "a"), ("math-inline", "b")]),
    ],
    ids=["dollar", "paren", "dollars-block", "dollars-lines", "brackets-lines", "brackets-inline",
         "dollars-inline", "two"],
)  # fmt: skip
def test_each_math_delimiter_becomes_a_math_element_holding_the_tex(text, expected):
    assert math_of(render_markdown(text)) == expected


def test_markdown_does_not_touch_the_tex():
    tex = "a_1 * b_2 * c \\\\ \\{x\\} \\# [y](z) `w` <b>"
    assert math_of(render_markdown(f"${tex}$")) == [("math-inline", tex)]
    aligned = "\\begin{aligned}\n- a &= b \\\\\n# c &= d\n\\end{aligned}"
    assert math_of(render_markdown(f"$$\n{aligned}\n$$")) == [("math-display", aligned)]
    assert math_of(render_markdown(f"\\[\n{aligned}\n\\]")) == [("math-display", aligned)]


@pytest.mark.parametrize(
    "text",
    [
        "It costs $5 and $10.",
        "Between $ 3 and $ 4",
        "US$20, or $30",
        "\\$x$ is escaped",
        "`$x$` is code",
        "```\n$$x$$\n```",
        "    $x$ indented code",
        "$unclosed",
        "$$\nunclosed block",
        "\\(unclosed",
        "\\[\nunclosed\n\nacross a blank line\\]",
        "$$\n\n$$",
    ],
)
def test_prose_code_and_unclosed_delimiters_stay_text(text):
    assert math_of(render_markdown(text)) == []


def test_a_display_block_inside_a_list_item_or_quote_stays_in_it():
    html = render_markdown("- $$a\n  b$$\n- c\n\n> \\[x\n> y\\]")
    assert math_of(html) == [("math-display", "a\nb"), ("math-display", "x\ny")]
    assert re.search(r"<li>\s*<span class=\"math-display\">", html)
    assert re.search(r"<blockquote>\s*<span class=\"math-display\">", html)


# --- Hostile math ----------------------------------------------------------------------

HOSTILE_TEX = [
    "\\href{javascript:alert(1)}{click}",
    "\\url{javascript:alert(1)}",
    "\\htmlClass{copy-message}{x}\\htmlId{composer}{y}\\htmlData{hx-get=/x}{z}",
    "\\includegraphics{https://evil.example/x.png}",
    "<script>alert(1)</script>",
    '</span><img src=x onerror="alert(1)"><span class="math-inline">',
    "\\text{<a href='javascript:alert(1)'>x</a>}",
    'x" onmouseover="alert(1)',
]


@pytest.mark.parametrize("tex", HOSTILE_TEX)
@pytest.mark.parametrize("wrap", ["${}$", "$${}$$", "\\({}\\)", "\\[{}\\]", "$$\n{}\n$$"])
def test_hostile_tex_is_only_ever_the_text_of_a_math_element(tex, wrap):
    html = render_markdown(wrap.format(tex))
    tree = _Tree(html)
    [math] = tree.math()
    assert math.text == tex and math.children == 0
    assert {e.tag for e in tree.elements} <= {"p", "span"}
    assert all(set(e.attrs) == {"class"} for e in tree.elements if e.tag == "span")
    assert "<a" not in html and "<img" not in html and "<script" not in html


def test_math_classes_cannot_be_forged_outside_math():
    forged = [
        '<span class="math-inline">\\href{javascript:x}{y}</span>',
        "```math-inline\n\\href{javascript:x}{y}\n```",
        "[a](https://ok.example 'math-inline')",
    ]
    for text in forged:
        assert math_of(render_markdown(text)) == [], text


# Fragments that make or break math, hostile TeX and the odd Markdown marker.
_FRAGMENTS = st.sampled_from(
    ["$", "$$", "\\(", "\\)", "\\[", "\\]", "\\", "\n", "\n\n", "- ", "`", "```\n", "    ", "|"]
    + HOSTILE_TEX
)
math_soup = (
    st.lists(st.one_of(_FRAGMENTS, st.text(alphabet="ab1 {}_^*<>&\"'", max_size=6)), max_size=14)
    .map("".join)
    .filter(bool)
)

PROPERTY = hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ALLOWED_TAGS = {
    "p", "span", "code", "pre", "ul", "li", "ol", "em", "strong", "br", "hr", "blockquote",
    "h1", "h2", "table", "thead", "tbody", "tr", "th", "td", "del",
}  # fmt: skip


def _squeezed(text: str) -> str:
    return re.sub(r"\s+", "", text)


@PROPERTY
@given(math_soup)
def test_any_math_soup_renders_inert_with_math_taken_verbatim_from_the_text(text):
    tree = _Tree(render_markdown(text))
    assert {e.tag for e in tree.elements} <= ALLOWED_TAGS, tree.elements
    for element in tree.elements:
        for name, value in element.attrs.items():
            assert name == "class" or (element.tag == "a" and name in {"href", "title", "rel"})
            assert not name.startswith(("on", "hx-", "data-")) and name not in {"id", "style"}
            assert not re.match(r"\s*(javascript|data|vbscript):", value or "", re.I)
    for math in tree.math():
        assert math.children == 0, "math is text only"
        assert _squeezed(math.text) in _squeezed(text), "math is a piece of the reply, verbatim"


@pytest.mark.parametrize(
    "text",
    [
        "- $$a\n" * 20_000,
        "- \\[a\n" * 20_000,
        "\\( " * 60_000,
        "$a " * 60_000,
        "x $$a " * 30_000,
        "$a" + "\\$" * 60_000,
    ],
    ids=["dollar-list", "bracket-list", "paren", "dollar", "double-inline", "escaped"],
)
def test_unclosed_delimiters_cost_linear_time(text):
    started = time.perf_counter()
    render_markdown(text)
    # Quadratic scanning took 95 s for the first case; linear is about 1 s on this machine.
    assert time.perf_counter() - started < 6


# --- Tables and code -------------------------------------------------------------------


def test_tables_render_with_alignment_as_classes_not_styles():
    html = render_markdown("| a | b | c |\n|:--|:-:|--:|\n| 1 | $x$ | 3 |")
    tree = _Tree(html)
    cells = [(e.tag, e.attrs.get("class")) for e in tree.elements if e.tag in {"th", "td"}]
    assert cells == [
        ("th", "align-left"), ("th", "align-center"), ("th", "align-right"),
        ("td", "align-left"), ("td", "align-center"), ("td", "align-right"),
    ]  # fmt: skip
    assert "style=" not in html
    assert math_of(html) == [("math-inline", "x")]


def test_highlighted_code_keeps_its_token_classes():
    html = render_markdown("```python\nx = 1  # $a$\n```")
    assert '<code class="language-python">' in html
    assert '<span class="n">x</span>' in html and '<span class="mi">1</span>' in html
    assert math_of(html) == []


# --- The copy button -------------------------------------------------------------------


def _message(role: str, status: str, content: str, *, show_all: bool = False) -> str:
    view = MessageView(
        uuid="00000000-0000-0000-0000-000000000001",
        role=role,
        status=status,
        content=content,
        show_all=show_all,
    )
    return render_message(view)


def _copy_buttons(html: str) -> list[dict[str, str | None]]:
    return [
        e.attrs
        for e in _Tree(html).elements
        if "copy-message" in (e.attrs.get("class") or "").split()
    ]


def test_a_finished_reply_has_one_copy_button_carrying_its_markdown_source():
    text = 'Use **bold** and $x$ "quoted" <script>alert(1)</script>\nline two'
    [button] = _copy_buttons(_message(Role.ASSISTANT, MessageStatus.COMPLETE, text))
    assert button["data-copy-text"] == text
    assert button["data-copy-label"] and button["data-copied-label"]


def test_a_user_message_copy_button_reads_the_text_shown_instead_of_repeating_it():
    text = "Line one\n  <b>two</b> & $x$"
    html = _message(Role.USER, MessageStatus.COMPLETE, text)
    [button] = _copy_buttons(html)
    assert "data-copy-text" not in button and button["data-copied-label"]
    [shown] = [e for e in _Tree(html).elements if "message-content" in e.attrs.get("class", "")]
    assert shown.text == text


def test_a_huge_reply_shown_whole_is_not_sent_twice_for_its_copy_button():
    html = _message(Role.ASSISTANT, MessageStatus.COMPLETE, "word " * 30_000, show_all=True)
    [button] = _copy_buttons(html)
    assert "data-copy-text" not in button
    assert len(html) < 200_000


@pytest.mark.parametrize("role", [Role.ASSISTANT, Role.USER])
def test_a_huge_message_is_collapsed_to_its_beginning_with_no_copy_or_edit_of_a_part(role):
    html = _message(role, MessageStatus.COMPLETE, "word " * 30_000)
    assert _copy_buttons(html) == [] and "edit-message" not in html
    assert "Show all" in html and len(html) < 20_000


@pytest.mark.parametrize("status", [MessageStatus.PENDING, MessageStatus.STREAMING])
def test_a_reply_being_written_has_no_copy_button_yet(status):
    assert _copy_buttons(_message(Role.ASSISTANT, status, "partial")) == []


def test_an_empty_failed_reply_has_nothing_to_copy():
    assert _copy_buttons(_message(Role.ASSISTANT, MessageStatus.FAILED, "")) == []


def test_the_copy_text_attribute_cannot_break_out_of_its_quotes():
    html = _message(Role.ASSISTANT, MessageStatus.COMPLETE, '" onclick="alert(1)" x="')
    [button] = _copy_buttons(html)
    assert "onclick" not in button
    assert button["data-copy-text"] == '" onclick="alert(1)" x="'
