"""Reads of the provider and model catalogue: which providers the environment enables (and
their credentials), which chat models can be chosen, and catalogue rows looked up by id or by
provider and name for export and import."""

import os
from dataclasses import dataclass

from django.conf import settings

from conversations.models import ChatModel, Provider


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
