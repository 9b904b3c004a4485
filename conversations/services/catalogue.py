"""The provider and model catalogue."""

from conversations.models import ChatModel, Provider
from conversations.providers.presets import PROVIDER_PRESETS


def catalogue_sync_presets() -> None:
    """Insert built-in providers and models that are missing; never overwrite admin edits."""
    for preset in PROVIDER_PRESETS:
        provider, _ = Provider.objects.get_or_create(
            slug=preset.slug,
            defaults={
                "name": preset.name,
                "base_url": preset.base_url,
                "currency": preset.currency,
            },
        )
        for model_preset in preset.models:
            ChatModel.objects.get_or_create(
                provider=provider, name=model_preset.name, defaults=model_preset.as_defaults()
            )


def catalogue_add_discovered(*, provider: Provider, names: list[str]) -> list[ChatModel]:
    """Add models an endpoint's /models listed; known ones keep their settings."""
    added = []
    for name in names:
        chat_model, created = ChatModel.objects.get_or_create(
            provider=provider, name=name, defaults={"discovered": True}
        )
        if created:
            added.append(chat_model)
    return added


def provider_remember_stream_usage(*, provider_id: int, supported: bool) -> None:
    # Written only where it changes: hundreds of replies that started before the first one
    # finished all learn the same answer, and each write would queue on the one row's lock.
    Provider.objects.filter(pk=provider_id).exclude(stream_usage_supported=supported).update(
        stream_usage_supported=supported
    )
