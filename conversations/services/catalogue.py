"""The provider and model catalogue."""

from conversations.models import ChatModel, ModelPrice, PriceBand, Provider
from conversations.providers.presets import PROVIDER_PRESETS
from conversations.providers.price_presets import DatedPricePreset


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
            chat_model, _ = ChatModel.objects.get_or_create(
                provider=provider, name=model_preset.name, defaults=model_preset.as_defaults()
            )
            _sync_dated_prices(chat_model, model_preset.prices)


def _sync_dated_prices(chat_model: ChatModel, dated: tuple[DatedPricePreset, ...]) -> None:
    """The preset's price changes that the model has no row for yet, with their bands."""
    for preset in dated:
        price, created = ModelPrice.objects.get_or_create(
            chat_model=chat_model,
            effective_from=preset.effective_from,
            defaults=preset.as_defaults(),
        )
        if created:
            PriceBand.objects.bulk_create(
                PriceBand(price=price, **band.as_fields()) for band in preset.bands
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
