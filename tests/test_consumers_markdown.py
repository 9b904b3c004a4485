"""The chat socket while a reply streams Markdown: formatted frames, sanitised, and a final
swap that changes nothing the reader sees."""

import pytest

from tests.fake_provider import Reply
from tests.markup import risky_markup
from tests.wsclient import ChatSocket

pytestmark = pytest.mark.django_db(transaction=True)

MARKDOWN_REPLY = [
    "Some ", "**bold", "** words", " here.\n\n",
    "```python\n", "def f(x):\n", "\n", "    return x\n", "```\n\n",
    "| a | b |\n", "|---|---|\n", "| 1 | 2 |\n\n",
    "- one\n", "- two\n\n", "$$\nx^2\n$$\n\n",
    "Last", " words", " of", " it.",
]  # fmt: skip


async def _stream(conversation, content: list[str], tps: float = 25) -> tuple[ChatSocket, list]:
    """The owner's tab through a whole reply; the reply's content HTML after each frame
    while it streamed."""
    tab = ChatSocket(conversation, conversation.owner)
    await tab.connect()
    await tab.say("Show me", "k1")
    seen: list[str] = []

    def record(page) -> bool:
        reply = page.last()
        if reply is None:
            return False
        if reply.status == "streaming":
            seen.append(reply.content_html)
        return reply.status == "complete"

    await tab.read_until(record, timeout=20)
    return tab, seen


async def test_a_reply_is_formatted_while_it_streams(conversation, fake_provider):
    fake_provider.script(Reply(content=MARKDOWN_REPLY, tokens_per_second=25))
    tab, seen = await _stream(conversation, MARKDOWN_REPLY)
    assert any("<strong>bold</strong>" in html for html in seen)
    assert any('<pre><code class="language-python"><span class="k">def</span>' in h for h in seen)
    assert any("<table>" in html and "<td>2</td>" in html for html in seen)
    assert not any("**" in html for html in seen if "<strong>" in html)
    await tab.close()


async def test_the_final_swap_brings_the_content_the_stream_built(conversation, fake_provider):
    fake_provider.script(Reply(content=MARKDOWN_REPLY, tokens_per_second=25))
    tab, seen = await _stream(conversation, MARKDOWN_REPLY)
    final = tab.page.last()
    assert seen[-1] == final.content_html
    assert "Last words of it." in seen[-1]
    await tab.close()


SPLIT = [
    "<img src=x onerr", "or=alert(1)> then [x](java", "script:alert(1)) and <div hx-",
    'get="/api/v1/export/" hx-trigger=load>y</div> ![a](https://evil', ".example/x.png) end",
]  # fmt: skip


async def test_a_payload_split_across_deltas_reaches_no_page_as_markup(conversation, fake_provider):
    fake_provider.script(Reply(content=SPLIT, tokens_per_second=25))
    tab, seen = await _stream(conversation, SPLIT)
    assert len(seen) >= 3, "the payload should arrive in several frames"
    for html in [*seen, tab.page.last().content_html]:
        assert risky_markup(html) == [], html
    assert "onerror=alert(1)" in tab.page.last().text  # shown as the text it is
    await tab.close()
