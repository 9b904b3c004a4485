"""Counting tokens: with the model family's own tokenizer where one is bundled
(tokenizers.py), else an estimate that downloads nothing.

The estimate: CJK text costs about one token per character with the tokenizers of DeepSeek,
Qwen and GLM; other text about one token per four characters. The two are off by different
amounts for each model (Chinese 30-40% high, English 5-8% low for Qwen and DeepSeek), so each
language class has its own calibration ratio, learned from the prompt_tokens providers
report: one ratio, calibrated on a mixed chat, counted English at x0.73. The provider's
reported prompt_tokens stay the truth for cost.
"""

import re
from dataclasses import dataclass
from typing import NamedTuple

from conversations import tokenizers

_CJK = re.compile(
    r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]"
)
# Every message costs a few tokens of framing (role, separators) in the chat template.
PER_MESSAGE_OVERHEAD = 4


def has_cjk(text: str) -> bool:
    """Chinese, Japanese or Korean in `text`: written without spaces between words."""
    return bool(_CJK.search(text))


def estimate_tokens(text: str) -> int:
    if not text:
        return 0
    cjk = len(_CJK.findall(text))
    return cjk + (len(text) - cjk + 3) // 4


def estimate_message_tokens(role: str, content: str) -> int:
    return PER_MESSAGE_OVERHEAD + estimate_tokens(content)


# Raw (uncalibrated) tokens of a text: (CJK part, the rest). A tokenizer's count is all "rest".
Parts = tuple[int, int]


class RawCount(NamedTuple):
    """A request's count before calibration, and what counted it ("": the estimate)."""

    parts: Parts = (0, 0)
    tokenizer: str = ""


def estimate_parts(text: str) -> Parts:
    if not text:
        return (0, 0)
    cjk = len(_CJK.findall(text))
    return (cjk, (len(text) - cjk + 3) // 4)


@dataclass(frozen=True)
class TokenCounter:
    """How one chat model's tokens are counted, calibrated toward what its provider reports."""

    # The bundled tokenizer's family ("" for the estimate) and its counting function.
    tokenizer: str = ""
    count: tokenizers.Count | None = None
    # The tokenizer's ratio, or the estimate's for text other than CJK; and for CJK.
    ratio: float = 1.0
    cjk_ratio: float = 1.0

    def raw(self, text: str) -> Parts:
        if self.count is None:
            return estimate_parts(text)
        return (0, self.count(text) if text else 0)

    def raw_message(self, role: str, content: str) -> Parts:
        cjk, rest = self.raw(content)
        return (cjk, rest + PER_MESSAGE_OVERHEAD)

    def calibrated(self, parts: Parts) -> int:
        return int(parts[0] * self.cjk_ratio + parts[1] * self.ratio) + 1

    def text(self, text: str) -> int:
        return self.calibrated(self.raw(text))

    def message(self, role: str, content: str) -> int:
        return self.calibrated(self.raw_message(role, content))


ESTIMATE = TokenCounter()


def token_counter(chat_model, *, use_tokenizer: bool = True) -> TokenCounter:
    """The counter for `chat_model` (a ChatModel, or None: the plain estimate). A tokenizer
    still loading leaves this request to the estimate (tokenizers.py)."""
    if chat_model is None:
        return ESTIMATE
    family = tokenizers.family_of(chat_model.name) if use_tokenizer else None
    count = tokenizers.counter(family)
    if count is not None:
        return TokenCounter(family or "", count, ratio=chat_model.token_ratio)
    return TokenCounter(ratio=chat_model.token_ratio, cjk_ratio=chat_model.token_ratio_cjk)
