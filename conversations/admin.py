"""Admin for every model. Read-mostly: history is not edited by hand."""

from django.contrib import admin

from conversations.discovery import discover_models
from conversations.models import (
    ChatModel,
    Conversation,
    ConversationSummary,
    Message,
    Provider,
    UsageRecord,
)


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
    actions = ["discover"]

    @admin.action(description="Discover models from the endpoint's /models")
    def discover(self, request, queryset) -> None:
        for provider in queryset:
            added = discover_models(provider)
            names = ", ".join(m.name for m in added) or "nothing new"
            self.message_user(request, f"{provider.name}: {names}")


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
        "is_active",
    ]
    list_filter = ["provider", "is_active", "supports_vision", "supports_thinking"]
    search_fields = ["name", "label"]


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    can_delete = False
    fields = ["role", "status", "content", "reasoning", "model_name", "prompt_tokens"]
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["__str__", "owner", "chat_model", "updated_at", "archived"]
    list_filter = ["archived", "chat_model"]
    search_fields = ["title", "owner__username"]
    readonly_fields = ["uuid", "created_at", "updated_at"]
    inlines = [MessageInline]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["uuid", "conversation", "role", "status", "model_name", "created_at"]
    list_filter = ["role", "status"]
    search_fields = ["content"]
    raw_id_fields = ["conversation", "parent"]
    readonly_fields = ["uuid", "created_at", "completed_at", "heartbeat_at", "context"]


@admin.register(ConversationSummary)
class ConversationSummaryAdmin(admin.ModelAdmin):
    list_display = ["conversation", "covers_through", "token_count", "model_name", "created_at"]
    raw_id_fields = ["conversation", "previous", "covers_through"]


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "user",
        "kind",
        "model_name",
        "prompt_tokens",
        "completion_tokens",
        "cost",
        "currency",
        "reported",
    ]
    list_filter = ["kind", "currency", "reported"]
    date_hierarchy = "created_at"
    raw_id_fields = ["conversation", "message"]
