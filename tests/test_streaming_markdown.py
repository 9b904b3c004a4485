"""A streaming reply's live Markdown: at every fragment the same HTML as the final render,
sanitised the same way, with one render per fragment however many pages watch."""

import random
import re

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from conversations.rendering import render_markdown
from conversations.streaming_markdown import (
    LONG_TAIL_CHARS,
    LONG_TAIL_INTERVAL,
    UNKNOWN,
    StreamingMarkdown,
)
from tests.markup import risky_markup
from tests.page_model import block_ends

SAMPLES = [
    # headings, emphasis, a loose list, fenced code with a blank line, a table, display math
    "# Title\n\nSome **bold** text and `code`.\n\n- one\n- two\n\n```python\ndef f(x):\n\n"
    "    return x\n```\n\n| a | b |\n|---|:-:|\n| 1 | 2 |\n\n$$\nx^2\n$$\n\nDone.",
    # setext headings, lazy continuation, ordered lists that continue after a blank line
    "Setext\n======\n\npara\nmore\n---\n\n1. a\n\n2. b\n3. c\n\n> quote\nlazy\n\n***\n",
    # link references defined after their use
    "[foo]\n\ntext [bar] here\n\n[foo]: http://x.example\n[bar]: https://y.example 'title'\n",
    # a long paragraph, then words that look like list markers but are not
    "A long paragraph " * 40 + "\n\nnext 12.5 words and 1) things",
    "~~~\nopen fence\n\nstill code",
    # a table that stops being one when a row has too many cells
    "para\n| a | b |\n|---|---|\n| 1 | 2 |-|\n\nafter",
    "- a\n- b\n\n  continued\n- c\n\n10. x\n11. y\n",
    "Inline $a+b$ and \\(c\\) and $$d$$ and $5 and $10.\n\n\\[\ne\n\\]\n",
    "<img src=x onerror=alert(1)> and [x](javascript:alert(1)) and "
    "![i](https://evil.example/a.png) <div hx-get=/x>y</div>",
    "    indented code\n\n    more\n\ntext\n# h\n## h2\ntext2\n===\n",
    # blocks that interrupt a paragraph, then stop being blocks
    "a\n#\n#b\n***\n***c\n\n1. x\n\n2\n\n2. y\n",
    "12345.678901 12345.728901 12345.778901 " * 30,
    "word\r\nnext\r\n\r\npara\rthird",
    "* a\n\n  * nested **b\n  * c**\n\n    code in item\n\nend _x_y_ *z*",
]


def _stream(text: str, cuts) -> StreamingMarkdown:
    renderer = StreamingMarkdown()
    for cut in cuts:
        renderer.advance(text[:cut])
        assert renderer.html() == render_markdown(text[:cut]), repr(text[:cut])
    return renderer


@pytest.mark.parametrize("text", SAMPLES)
def test_every_prefix_renders_as_the_whole_would(text):
    _stream(text, range(1, len(text) + 1))


@pytest.mark.parametrize("text", SAMPLES)
def test_random_fragment_sizes_render_as_the_whole_would(text):
    rng = random.Random(text)
    for _ in range(25):
        cuts = sorted({rng.randint(1, len(text)) for _ in range(rng.randint(1, 30))})
        _stream(text, [*cuts, len(text)])


def test_blocks_before_the_tail_are_rendered_once_and_kept():
    text = "# One\n\nfirst paragraph\n\nsecond paragraph\n\nthird"
    renderer = _stream(text, range(1, len(text) + 1))
    assert len(renderer.blocks) == 2  # the last two wait for their lines to complete
    assert renderer.blocks[0] == "<h1>One</h1>\n"


def test_a_fence_still_open_is_shown_as_highlighted_code():
    renderer = StreamingMarkdown()
    renderer.advance("Here:\n\n```python\ndef f():\n    return 1\n")
    assert '<pre><code class="language-python"><span class="k">def</span>' in renderer.html()


def test_a_reference_defined_late_reaches_the_committed_link():
    renderer = StreamingMarkdown()
    text = "See [docs].\n\nMore text.\n\nAnd more.\n\n[docs]: https://docs.example\n"
    renderer.advance(text[:30])
    epoch = renderer.epoch
    renderer.advance(text)
    assert renderer.epoch > epoch
    assert '<a href="https://docs.example"' in renderer.html()


def test_plain_words_after_a_paragraph_are_appended_not_rendered_again():
    renderer = StreamingMarkdown()
    renderer.advance("Some **bold** words")
    page = renderer.mark()
    renderer.advance("Some **bold** words and more")
    assert renderer.frame("r", page) == (
        '<div hx-swap-oob="beforeend:#m-r-text &gt; :last-child"> and more</div>'
    )
    assert renderer.html() == render_markdown("Some **bold** words and more")


def test_words_that_could_still_open_a_block_are_rendered_again():
    renderer = StreamingMarkdown()
    renderer.advance("para\n\n12")
    page = renderer.mark()
    renderer.advance("para\n\n12. item")
    assert 'data-keep="' in renderer.frame("r", page)
    assert renderer.html() == render_markdown("para\n\n12. item")


def test_words_in_a_list_item_are_appended_into_it():
    renderer = StreamingMarkdown()
    renderer.advance("Steps:\n\n1. Open the *file*\n2. Read *it* ")
    page = renderer.mark()
    renderer.advance("Steps:\n\n1. Open the *file*\n2. Read *it* slowly")
    target = "#m-r-text &gt; :last-child &gt; :last-child"
    assert renderer.frame("r", page) == f'<div hx-swap-oob="beforeend:{target}"> slowly</div>'
    assert renderer.html() == render_markdown("Steps:\n\n1. Open the *file*\n2. Read *it* slowly")


def test_every_page_at_one_place_shares_one_frame():
    renderer = StreamingMarkdown()
    renderer.advance("# Title\n\nOne\n\nTwo\n\n")
    pages = [renderer.mark() for _ in range(50)]
    renderer.advance("# Title\n\nOne\n\nTwo\n\n- item")
    frames = {id(renderer.frame("r", page)) for page in pages}
    assert len(frames) == 1


def test_a_page_behind_or_unknown_gets_what_it_lacks():
    text = "# Title\n\nOne\n\nTwo\n\nThree `x`\n\nFour"
    renderer = StreamingMarkdown()
    renderer.advance(text[:12])
    behind = renderer.mark()
    renderer.advance(text[:25])
    renderer.advance(text)
    for page, content in ((behind, render_markdown(text[:12])), (UNKNOWN, "<p>stale</p>\n")):
        assert _apply(content, renderer.frame("r", page)) == render_markdown(text)


def _apply(content: str, frame: str) -> str:
    """A frame applied to a page's content, as static/js/streaming.js and htmx do."""
    keep = re.match(
        r'<div hx-swap-oob="beforeend:#m-r-text" data-keep="(\d+)">(.*)</div>$', frame, re.S
    )
    if keep:
        count, blocks = int(keep.group(1)), keep.group(2)
        kept = content[: block_ends(content)[count - 1]] if count else ""
        return kept + blocks
    words = re.match(r'<div hx-swap-oob="beforeend:#m-r-text([^"]*)">(.*)</div>$', frame)
    assert words, frame
    depth = words.group(1).count(" &gt; :last-child")
    close = list(re.finditer(r"</[a-z0-9]+>\n?", content))[-depth].start()
    return content[:close] + words.group(2) + content[close:]


@pytest.mark.parametrize("text", SAMPLES)
def test_frames_applied_in_turn_build_the_whole_render(text):
    rng = random.Random(len(text))
    renderer, page, content = StreamingMarkdown(), UNKNOWN, ""
    cut = 0
    while cut < len(text):
        cut = min(len(text), cut + rng.randint(1, 12))
        renderer.advance(text[:cut])
        frame = renderer.frame("r", page)
        if frame:
            content = _apply(content, frame)
        page = renderer.mark()
        assert content == render_markdown(text[:cut])


# --- sanitising: payloads split across deltas --------------------------------------------

SPLIT_PAYLOADS = [
    ["<img src=x onerr", "or=alert(1)>"],
    ["[x](java", "script:alert(1))"],
    ["<div hx-", 'get="/api/v1/export/" hx-trigger=load>x</div>'],
    ["![a](https://evil", ".example/x.png)"],
    ["[a](https://ok.example 'ti", 'tle" onmouseover="alert(1)\')'],
    ["<scr", "ipt>alert(1)</scr", "ipt>"],
    ["| a |\n|---|\n| <img src=x on", "error=alert(1)> |"],
]


def _risky(frame: str) -> list:
    """What a frame's model HTML carries that it must not (its own wrapper set aside: the
    one swap attribute chatsite writes)."""
    html = re.sub(r'^<div hx-swap-oob="[^"]*"(?: data-keep="\d+")?>|</div>$', "", frame)
    return risky_markup(html)


def _frames(pieces: list[str]) -> list[str]:
    renderer, page, frames, text = StreamingMarkdown(), UNKNOWN, [], ""
    for piece in pieces:
        text += piece
        renderer.advance(text)
        frames.append(renderer.frame("r", page))
        page = renderer.mark()
    return frames


@pytest.mark.parametrize("pieces", SPLIT_PAYLOADS)
def test_a_payload_split_across_deltas_is_sanitised_in_every_frame(pieces):
    for frame in _frames(pieces):
        assert _risky(frame) == [], frame


PROPERTY = hsettings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
payload_pieces = st.lists(
    st.one_of(
        st.sampled_from([p for pieces in SPLIT_PAYLOADS for p in pieces]),
        st.sampled_from(["\n", "\n\n", "> ", "* ", "1. ", "```", "$$", "|", "**", "`"]),
        st.text(max_size=8),
    ),
    min_size=1,
    max_size=10,
)


@PROPERTY
@given(payload_pieces)
def test_any_split_renders_what_the_whole_renders_and_nothing_risky(pieces):
    renderer, text = StreamingMarkdown(), ""
    for frame, piece in zip(_frames(pieces), pieces, strict=True):
        text += piece
        assert _risky(frame) == [], frame
    renderer.advance(text)
    assert renderer.html() == render_markdown(text)


def test_a_long_paragraph_is_rendered_again_at_most_twice_a_second():
    now = [0.0]
    renderer = StreamingMarkdown()
    renderer.clock = lambda: now[0]
    text, renders, seconds = "", 0, 0.0
    for i in range(900):
        text += f"w{i} *x{i}* "  # markup throughout: no word is appended without a parse
        now[0] += 0.05  # a fragment every 50 ms
        before = renderer.rendered_at
        renderer.advance(text)
        if len(text) > LONG_TAIL_CHARS:
            renders += renderer.rendered_at != before
            seconds += 0.05
    assert seconds > 10
    assert renders <= seconds / LONG_TAIL_INTERVAL + 1
    assert "*x899*" in renderer.html()  # the words since, as text at the paragraph's end
    now[0] += 1
    renderer.advance(text + "end")
    assert renderer.html() == render_markdown(text + "end")  # formatted at the next render
