"""A message's text cut into chunks for recall: a few hundred tokens each, overlapping, cut
at sentence ends where there are any, so a fact is never split without a copy whole."""

import re
from collections.abc import Callable

from conversations.tokens import estimate_tokens

# Within the bundled embedder's window (512 tokens with its prefix) by the estimate's margin.
CHUNK_TOKENS = 320
OVERLAP_TOKENS = 60

# After a sentence end (Latin or CJK punctuation) or a line break.
_SENTENCE_END = re.compile(r"(?<=[。！？!?；;.\n])\s*")


def split_into_chunks(
    text: str,
    *,
    max_tokens: int = CHUNK_TOKENS,
    overlap_tokens: int = OVERLAP_TOKENS,
    count: Callable[[str], int] = estimate_tokens,
) -> list[str]:
    """Chunks of at most about `max_tokens`; each after the first starts with the last
    sentences (about `overlap_tokens`) of the one before."""
    text = text.strip()
    if not text:
        return []
    if count(text) <= max_tokens:
        return [text]
    pieces = [p for s in _SENTENCE_END.split(text) for p in _fitting(s.strip(), max_tokens, count)]
    chunks: list[list[str]] = [[]]
    for piece in pieces:
        # The joined text is counted, not the sum of its pieces: estimates round per call.
        if chunks[-1] and count(" ".join([*chunks[-1], piece])) > max_tokens:
            chunks.append(_tail(chunks[-1], overlap_tokens, count))
            while chunks[-1] and count(" ".join([*chunks[-1], piece])) > max_tokens:
                chunks[-1].pop(0)  # the overlap gives way to what the chunk is for
        chunks[-1].append(piece)
    return [" ".join(chunk) for chunk in chunks if chunk]


def _fitting(sentence: str, max_tokens: int, count: Callable[[str], int]) -> list[str]:
    """A sentence longer than a chunk (code, a run-on line), cut at spaces or anywhere."""
    if not sentence:
        return []
    if count(sentence) <= max_tokens:
        return [sentence]
    words = sentence.split(" ") if " " in sentence else list(sentence)
    joiner = " " if " " in sentence else ""
    parts, current = [], ""
    for word in words:
        candidate = f"{current}{joiner}{word}" if current else word
        if current and count(candidate) > max_tokens:
            parts.append(current)
            current = word
        else:
            current = candidate
    return parts + [current] if current else parts


def _tail(pieces: list[str], tokens: int, count: Callable[[str], int]) -> list[str]:
    """The last pieces of a chunk worth about `tokens`, carried into the next as overlap;
    never the whole chunk (the next one must move on)."""
    carried: list[str] = []
    size = 0
    for piece in reversed(pieces[1:]):
        size += count(piece)
        if size > tokens:
            break
        carried.insert(0, piece)
    return carried
