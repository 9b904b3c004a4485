"""What live Markdown costs the web process per token (conversations/streaming_markdown.py).

A reply is fed to the live renderer as the fan-out feeds it, a fragment at a time, and each
fragment's frame is built for one socket (further sockets share it): CPU seconds per token,
against today's escaped-text delta for the same fragments. Three replies of 2,000 tokens:
mixed Markdown (headings, paragraphs with inline markup, lists, code, tables, math), the
bench's own token stamps (what `make bench` streams) and one long paragraph with inline
markup throughout (the tail that never commits). Fragments of 1, 2 and 5 tokens: 20 tokens/s
at the 50 ms interval, at the 100 ms interval under load, and a loop running behind.

Prints one JSON line of figures last; run alone with `python -m bench.markdown_live`.
"""

import json
import os
import random
import time
from html import escape

TOKENS = 2000
FRAGMENT_TOKENS = (1, 2, 5)
ROUNDS = 3  # the best of three: the machine's other work only ever adds
TOKENS_PER_SECOND = 20
WORDS = ["the", "model", "streams", "text", "with", "some", "longer", "words", "and", "short"]
MATH = "The energy is $E = mc^2$ and\n\n$$\n\\int_0^1 x^2\\,dx = \\frac13\n$$\n\n"


def mixed_markdown(tokens: int = TOKENS, seed: int = 24) -> list[str]:
    """A chat answer's Markdown, cut into ~4-character tokens as a model's tokenizer does."""
    rng = random.Random(seed)
    words = WORDS
    parts: list[str] = []

    def sentence(n: int) -> str:
        chosen = [rng.choice(words) for _ in range(n)]
        chosen[rng.randrange(n)] = f"**{rng.choice(words)}**"
        chosen[rng.randrange(n)] = f"`{rng.choice(words)}()`"
        return " ".join(chosen).capitalize() + ". "

    while sum(len(p) for p in parts) < tokens * 4:
        kind = rng.choice(["para", "para", "list", "code", "table", "math", "heading"])
        if kind == "para":
            parts.append("".join(sentence(rng.randint(8, 16)) for _ in range(3)) + "\n\n")
        elif kind == "heading":
            parts.append(f"## {sentence(4).strip()}\n\n")
        elif kind == "list":
            items = (f"{i}. {sentence(rng.randint(5, 10))}\n" for i in range(1, 6))
            parts.append("".join(items) + "\n")
        elif kind == "code":
            body = "".join(f"    total += {w}_{i}(x) * {i}\n" for i, w in enumerate(words[:8]))
            parts.append(f"```python\ndef run(x):\n    total = 0\n{body}    return total\n```\n\n")
        elif kind == "table":
            rows = "".join(f"| {w} | {i} | {i * 1.5:.1f} |\n" for i, w in enumerate(words[:6]))
            parts.append("| name | n | value |\n|---|--:|:-:|\n" + rows + "\n")
        else:
            parts.append(MATH)
    return _tokens("".join(parts), tokens)


def stamps(tokens: int = TOKENS) -> list[str]:
    """The bench provider's tokens: each its own timestamp (bench/provider.py)."""
    return [f"{12345.678901 + i * 0.05:.6f} " for i in range(tokens)]


def long_paragraph(tokens: int = TOKENS) -> list[str]:
    """One paragraph, never committed: inline markup every few words to its end."""
    words = [f"word{i}" if i % 7 else f"*w{i}*" for i in range(tokens)]
    return _tokens(" ".join(words), tokens)


def _tokens(text: str, count: int) -> list[str]:
    size = max(1, len(text) // count)
    return [text[i : i + size] for i in range(0, size * count, size)]


def escaped_delta(reply: list[str], per_fragment: int) -> float:
    """Today's frame: the fragment's text escaped into an append swap."""
    started = time.process_time()
    for i in range(0, len(reply), per_fragment):
        text = "".join(reply[i : i + per_fragment])
        f'<div hx-swap-oob="beforeend:#m-x-text">{escape(text)}</div>'  # noqa: B018
    return time.process_time() - started


def live_markdown(reply: list[str], per_fragment: int) -> tuple[float, float]:
    """CPU seconds for the whole reply, and the slowest fragment's. The renderer's clock
    moves a fragment's worth (at 20 tokens/s) per fragment, as the stream's would."""
    from conversations.streaming_markdown import StreamingMarkdown

    renderer, content, total, slowest = StreamingMarkdown(), "", 0.0, 0.0
    now = [0.0]
    renderer.clock = lambda: now[0]
    page = renderer.mark()
    for i in range(0, len(reply), per_fragment):
        content += "".join(reply[i : i + per_fragment])  # LiveReply's join, not counted
        now[0] += per_fragment / TOKENS_PER_SECOND
        before = time.process_time()
        renderer.advance(content)
        renderer.frame("x", page)
        page = renderer.mark()
        spent = time.process_time() - before
        total, slowest = total + spent, max(slowest, spent)
    return total, slowest


def measure() -> dict:
    replies = {"mixed": mixed_markdown(), "stamps": stamps(), "paragraph": long_paragraph()}
    figures: dict = {"tokens": TOKENS, "replies": {}}
    for name, reply in replies.items():
        by_size = {}
        for size in FRAGMENT_TOKENS:
            live = min((live_markdown(reply, size) for _ in range(ROUNDS)), key=lambda r: r[0])
            escaped = min(escaped_delta(reply, size) for _ in range(ROUNDS))
            by_size[str(size)] = {
                "live_us_per_token": live[0] / len(reply) * 1e6,
                "escaped_us_per_token": escaped / len(reply) * 1e6,
                "slowest_fragment_ms": live[1] * 1000,
            }
        figures["replies"][name] = by_size
    return figures


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    import django

    django.setup()
    figures = measure()
    for name, by_size in figures["replies"].items():
        for size, f in by_size.items():
            print(
                f"markdown live, {name}, {size} token(s) a fragment:"
                f" {f['live_us_per_token']:.1f} µs/token (escaped {f['escaped_us_per_token']:.2f}),"
                f" slowest fragment {f['slowest_fragment_ms']:.2f} ms",
                flush=True,
            )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
