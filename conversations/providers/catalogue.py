"""Reads of the provider and model catalogue: which providers the environment enables (and
their credentials), which chat models can be chosen, catalogue rows looked up by id or by
provider and name for export and import, and the embedder EMBEDDING_MODEL names."""

import os
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from conversations.models import ChatModel, Provider
from conversations.providers.presets import (
    BUNDLED_EMBEDDING,
    EmbeddingPreset,
    embedding_models,
    embedding_preset,
    embedding_providers,
)


@dataclass(frozen=True)
class Credentials:
    api_key: str
    base_url: str


def provider_credentials(provider: Provider) -> Credentials | None:
    """The key and endpoint from the environment; None when the provider is not enabled."""
    configured = settings.PROVIDER_CREDENTIALS.get(provider.slug)
    if configured is None:
        prefix = provider.slug.upper().replace("-", "_")
        configured = {
            "api_key": os.environ.get(f"{prefix}_API_KEY", ""),
            "base_url": os.environ.get(f"{prefix}_BASE_URL", ""),
        }
    api_key, base_url = configured["api_key"], configured["base_url"]
    if provider.slug == "local":
        # A local server usually needs no key; setting its URL is what enables it.
        return Credentials(api_key or "not-needed", base_url) if base_url else None
    return Credentials(api_key, base_url or provider.base_url) if api_key else None


def enabled_providers() -> list[Provider]:
    return [p for p in Provider.objects.all() if provider_credentials(p) is not None]


def chat_models_available() -> list[ChatModel]:
    enabled = [p.pk for p in enabled_providers()]
    return list(
        ChatModel.objects.filter(provider_id__in=enabled, is_active=True).select_related("provider")
    )


def default_chat_model() -> ChatModel | None:
    available = chat_models_available()
    return available[0] if available else None


def chat_model_get_available(pk: int | str | None) -> ChatModel | None:
    return next((m for m in chat_models_available() if str(m.pk) == str(pk)), None)


def chat_model_with_provider(pk: int) -> ChatModel | None:
    return ChatModel.objects.select_related("provider").filter(pk=pk).first()


def chat_model_by_name(provider_slug: str, name: str) -> ChatModel | None:
    """The catalogue row for provider/name, active or not; None when not in the catalogue."""
    if not provider_slug or not name:
        return None
    return ChatModel.objects.filter(provider__slug=provider_slug, name=name).first()


def provider_and_model(value: str) -> tuple[str, str] | None:
    """A "<provider slug>/<model name>" setting (SUMMARY_MODEL, EMBEDDING_MODEL) split at its
    first slash (a local server's model names may hold more); None unless both are there."""
    slug, _, name = value.strip().partition("/")
    return (slug, name) if slug and name else None


@dataclass(frozen=True)
class EmbeddingChoice:
    """The embedder EMBEDDING_MODEL names: the bundled one, or a provider's model."""

    provider_slug: str
    model: str
    preset: EmbeddingPreset
    # None for the bundled embedder, which calls no provider.
    credentials: Credentials | None = field(default=None, repr=False)

    @property
    def bundled(self) -> bool:
        return self.credentials is None

    @property
    def qualified_name(self) -> str:
        """As EMBEDDING_MODEL names it, provider/model (and MessageChunk.embedding_model)."""
        return f"{self.provider_slug}/{self.model}"


BUNDLED_CHOICE = EmbeddingChoice(
    BUNDLED_EMBEDDING.provider_slug, BUNDLED_EMBEDDING.name, BUNDLED_EMBEDDING
)


def embedding_is_bundled() -> bool:
    """Whether EMBEDDING_MODEL leaves embeddings to the bundled model (no database read)."""
    raw = settings.EMBEDDING_MODEL
    if not raw.strip():
        return True
    parsed = provider_and_model(raw)
    return parsed is not None and embedding_preset(*parsed) is BUNDLED_EMBEDDING


def embedding_choice() -> EmbeddingChoice:
    """The embedder EMBEDDING_MODEL names; the bundled one when it is empty. Raises
    ImproperlyConfigured when it is malformed, names no embedding model of a provider, or a
    provider the environment does not enable."""
    raw = settings.EMBEDDING_MODEL
    if not raw.strip():
        return BUNDLED_CHOICE
    parsed = provider_and_model(raw)
    if parsed is None:
        raise ImproperlyConfigured(
            "EMBEDDING_MODEL must be <provider>/<model> (e.g. dashscope/text-embedding-v4), "
            f"or empty for the bundled {BUNDLED_CHOICE.qualified_name}; got {raw!r}"
        )
    slug, name = parsed
    preset = embedding_preset(slug, name)
    if preset is None:
        raise ImproperlyConfigured(_no_such_embedder(slug, name))
    if preset is BUNDLED_EMBEDDING:
        return BUNDLED_CHOICE
    # The catalogue's row, for the endpoint an admin may have changed (as for chat).
    provider = Provider.objects.filter(slug=slug).first()
    if provider is None:
        raise ImproperlyConfigured(f"EMBEDDING_MODEL names {slug}, which is not in the catalogue")
    credentials = provider_credentials(provider)
    if credentials is None:
        raise ImproperlyConfigured(_not_enabled(slug))
    return EmbeddingChoice(slug, name, preset, credentials)


def _no_such_embedder(slug: str, name: str) -> str:
    if slug not in embedding_providers():
        offered = ", ".join(embedding_providers())
        return (
            f"EMBEDDING_MODEL names {slug!r}, which offers no embedding models here "
            f"(those that do: {offered})"
        )
    return (
        f"EMBEDDING_MODEL names {name!r}, which is not an embedding model of {slug} "
        f"(its models: {', '.join(embedding_models(slug))})"
    )


def _not_enabled(slug: str) -> str:
    prefix = settings.PROVIDER_ENV_PREFIXES[slug]  # every provider with embeddings has one
    needed = f"{prefix}_BASE_URL" if slug == "local" else f"{prefix}_API_KEY"
    return f"EMBEDDING_MODEL names {slug}, which is not enabled: set {needed}"
