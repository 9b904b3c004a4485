"""Admin of the provider catalogue: providers and their models, with each model's base
price, its dated prices and the price in force now."""

from django.contrib import admin
from django.db import models
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from conversations import tokenizers, usage
from conversations.admin import pricing
from conversations.models import ChatModel, ModelPrice, Provider
from conversations.providers.discovery import discover_models
from conversations.templatetags.money import money


class ChatModelInline(admin.TabularInline):
    model = ChatModel
    extra = 0
    fields = [
        "name",
        "label",
        "context_window",
        "max_output",
        "supports_vision",
        "supports_thinking",
        "always_thinks",
        "supports_json",
        "input_price",
        "cached_input_price",
        "output_price",
        "is_active",
    ]


@admin.register(Provider)
class ProviderAdmin(admin.ModelAdmin):
    # The API key lives in the environment; admin has no field that could show it.
    list_display = ["name", "slug", "base_url", "currency", "stream_usage_supported"]
    inlines = [ChatModelInline]
    # An address typed without a scheme is taken as https (Django 6's default, chosen now so
    # the form means the same after the upgrade); a local server's is written http://.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    actions = ["discover"]

    @admin.action(description=_("Discover models from the endpoint's /models"))
    def discover(self, request, queryset) -> None:
        for provider in queryset:
            added = discover_models(provider)
            names = ", ".join(m.name for m in added) or gettext("nothing new")
            self.message_user(request, f"{provider.name}: {names}")


class ModelPriceInline(admin.TabularInline):
    """A model's dated prices; each one's time bands are on its own page (the link)."""

    model = ModelPrice
    extra = 0
    fields = ["effective_from", "input_price", "cached_input_price", "output_price", "source"]
    show_change_link = True


@admin.register(ChatModel)
class ChatModelAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "provider",
        "context_window",
        "max_output",
        "input_price",
        "cached_input_price",
        "output_price",
        "price_now",
        "is_active",
        "tokenizer",
        "count_error",
    ]
    # The base price (in force before any dated price): edited in the list. A price change
    # from a date on, or by the hour, is a dated price (the model's page). Either applies to
    # calls made after it; re-pricing earlier usage is the "Re-price usage" action.
    list_editable = ["input_price", "cached_input_price", "output_price", "is_active"]
    list_filter = ["provider", "is_active", "supports_vision", "supports_thinking"]
    list_select_related = ["provider"]
    search_fields = ["name", "label"]
    # Learned from what providers report (tokens.py): shown, not edited.
    readonly_fields = ["token_ratio", "token_ratio_cjk"]
    inlines = [ModelPriceInline]
    actions = ["reprice"]

    def get_queryset(self, request):
        queryset = super().get_queryset(request).prefetch_related("prices__bands")
        return usage.with_count_error(queryset)

    @admin.display(description=_("Price now (in / cached / out)"))
    def price_now(self, chat_model: ChatModel) -> str:
        rates = usage.rates_in(chat_model, list(chat_model.prices.all()), timezone.now())
        figures = " / ".join(money(r) for r in (rates.input, rates.cached_input, rates.output))
        band = f" ({rates.band})" if rates.band else ""
        return f"{figures} {chat_model.provider.currency}{band}"

    def get_urls(self):
        reprice = path(
            "<int:chat_model_id>/reprice/",
            self.admin_site.admin_view(pricing.reprice_view),
            name="conversations_chatmodel_reprice",
        )
        return [reprice, *super().get_urls()]

    @admin.action(description=_("Re-price usage of a period…"))
    def reprice(self, request, queryset):
        return pricing.reprice_redirect(request, queryset)

    @admin.display(description=_("Token counts"))
    def tokenizer(self, chat_model: ChatModel) -> str:
        family = tokenizers.family_of(chat_model.name)
        if family is None:
            return gettext("estimate")
        return gettext("%(family)s tokenizer") % {"family": family}

    @admin.display(description=_("Counted vs reported"))
    def count_error(self, chat_model: ChatModel) -> str:
        """The counts' mean error against the provider's reported prompt tokens, over the
        model's recent replies: what the window's safety margin has to absorb."""
        replies = chat_model.count_replies  # type: ignore[attr-defined]  # with_count_error
        if not replies:
            return "—"
        return gettext("%(mean)+.1f%% (mean size %(size).1f%%, %(replies)s replies)") % {
            "mean": chat_model.count_error * 100,  # type: ignore[attr-defined]
            "size": chat_model.count_error_abs * 100,  # type: ignore[attr-defined]
            "replies": replies,
        }
