"""Admin for every model. Read-mostly: history is not edited by hand.

The figures (message counts, tokens, cost) come from `usage` annotations, so a changelist
is a fixed number of queries however many rows it shows. Money is shown per currency.
The catalogue (providers, models) is in `admin/catalogue.py`, dated prices and re-pricing
in `admin/pricing.py`, the month's CSV statement in `admin/statements.py`, provider health
(its page, and the incidents on it) in `admin/health.py`.
"""

from django.contrib import admin
from django.db import models
from django.db.models.functions import TruncDate
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import format_lazy
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from conversations import selectors, tokenizers, usage

# Each registers its admins: the catalogue and its prices, provider health, statements.
from conversations.admin import catalogue, health, pricing, statements  # noqa: F401
from conversations.errors import provider_error_codes
from conversations.models import (
    ChatModel,
    Conversation,
    ConversationSummary,
    Currency,
    Message,
    Provider,
    ProviderFailure,
    UsageBudget,
    UsageRecord,
)
from conversations.providers.discovery import discover_models
from conversations.templatetags.money import money


def _usage_text(tokens, cost, currency, *, estimated=False) -> str:
    if not currency:
        return "—"
    return f"{tokens} tokens, {money(cost)} {currency}" + (" (estimated)" if estimated else "")


class MessageUsageMixin:
    """The usage column of messages, read with the messages in one query."""

    def get_queryset(self, request):
        return usage.messages_with_usage(super().get_queryset(request))

    @admin.display(description=_("Usage"))
    def usage(self, message: Message) -> str:
        # Annotated by usage.messages_with_usage: not fields the stubs know of.
        return _usage_text(
            message.usage_tokens,  # type: ignore[attr-defined]
            message.usage_cost,  # type: ignore[attr-defined]
            message.usage_currency,  # type: ignore[attr-defined]
            estimated=message.usage_estimated,  # type: ignore[attr-defined]
        )


class MessageInline(MessageUsageMixin, admin.TabularInline):
    model = Message
    extra = 0
    can_delete = False
    fields = ["role", "status", "content", "reasoning", "model_name", "usage"]
    # Flat names only, though `fields` may nest groups as far as the stubs know.
    readonly_fields = fields  # type: ignore[assignment]
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


def _cost_column(currency: str):
    attribute = f"usage_cost_{currency.lower()}"

    @admin.display(description=format_lazy(_("Cost ({})"), currency), ordering=attribute)
    def column(self, obj) -> str:
        return money(getattr(obj, attribute))

    return column


def _cost_columns(model_admin_cls) -> list[str]:
    """One "Cost (CNY)", "Cost (USD)", ... column per currency: amounts are never mixed."""
    names = []
    for currency in Currency.values:
        name = f"cost_{currency.lower()}"
        setattr(model_admin_cls, name, _cost_column(currency))
        names.append(name)
    return names


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_filter = [
        ("owner", admin.RelatedOnlyFieldListFilter),
        ("chat_model", admin.RelatedOnlyFieldListFilter),
        "updated_at",
        "created_at",
        "archived",
    ]
    # Title or any message's text.
    search_fields = ["title", "messages__content", "owner__username"]
    list_select_related = ["owner", "chat_model__provider"]
    readonly_fields = ["uuid", "created_at", "updated_at"]
    raw_id_fields = ["owner"]
    date_hierarchy = "updated_at"
    inlines = [MessageInline]

    def get_queryset(self, request):
        return usage.conversations_with_usage(super().get_queryset(request))

    @admin.display(description=_("Messages"), ordering="message_count")
    def message_count(self, conversation: Conversation) -> int:
        return conversation.message_count  # type: ignore[attr-defined]  # annotated

    @admin.display(description=_("Tokens"), ordering="usage_tokens")
    def tokens(self, conversation: Conversation) -> int:
        return conversation.usage_tokens  # type: ignore[attr-defined]  # annotated

    @admin.display(description=_("Last activity"), ordering="updated_at")
    def last_activity(self, conversation: Conversation):
        return conversation.updated_at


# The stubs declare list_display on instances; the cost columns need the class first.
ConversationAdmin.list_display = [  # type: ignore[misc]
    "__str__",
    "owner",
    "chat_model",
    "message_count",
    "tokens",
    *_cost_columns(ConversationAdmin),
    "last_activity",
]


class UsageRecordInline(admin.TabularInline):
    model = UsageRecord
    extra = 0
    can_delete = False
    fields = [
        "created_at",
        "kind",
        "prompt_tokens",
        "cached_tokens",
        "completion_tokens",
        "reasoning_tokens",
        "reported",
        "retried",
        "in_flight",
        "cost",
        "currency",
    ]
    # Flat names only, though `fields` may nest groups as far as the stubs know.
    readonly_fields = fields  # type: ignore[assignment]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Message)
class MessageAdmin(MessageUsageMixin, admin.ModelAdmin):
    list_display = [
        "uuid",
        "conversation",
        "role",
        "status",
        "model_name",
        "prompt_tokens",
        "completion_tokens",
        "usage",
        "created_at",
    ]
    list_filter = ["role", "status", "created_at"]
    list_select_related = ["conversation"]
    search_fields = ["content"]
    raw_id_fields = ["conversation", "parent", "chat_model"]
    readonly_fields = ["uuid", "created_at", "completed_at", "heartbeat_at", "recall", "context"]
    inlines = [UsageRecordInline]

    @admin.display(description="Recall")
    def recall(self, message: Message) -> str:
        """What recall put into this reply's request: how, and which messages, by score."""
        record = (message.context or {}).get("recall") or {}
        if not record:
            return "—"
        recalled = ", ".join(
            f"#{entry.get('id')} ({entry.get('score')})" for entry in record.get("messages", [])
        )
        method = record.get("method") or "none"
        note = f"; {record['note']}" if record.get("note") else ""
        return f"{method}: {recalled or 'nothing relevant'}{note}"


class ProviderErrorCodeFilter(admin.SimpleListFilter):
    title = "error"
    parameter_name = "error_code"

    def lookups(self, request, model_admin):
        return [(code, code) for code in provider_error_codes()]

    def queryset(self, request, queryset):
        return queryset.filter(error_code=self.value()) if self.value() else queryset


@admin.register(ProviderFailure)
class ProviderFailureAdmin(admin.ModelAdmin):
    """Replies that ended on a provider's error, newest first: what an administrator must
    act on (an account out of credit, a refused key) beside what passes (a provider down)."""

    list_display = ["completed_at", "error_code", "provider", "model_name", "owner", "error_text"]
    list_filter = [ProviderErrorCodeFilter, "chat_model__provider", "completed_at"]
    list_select_related = ["conversation__owner", "chat_model__provider"]
    search_fields = ["error_text", "model_name", "conversation__owner__username"]
    date_hierarchy = "completed_at"
    readonly_fields = ("conversation", "model_name", "error_code", "error_text", "completed_at")
    fields = readonly_fields

    def get_queryset(self, request):
        return selectors.provider_failures(super().get_queryset(request))

    @admin.display(description="Provider")
    def provider(self, reply: ProviderFailure) -> str:
        return reply.chat_model.provider.name if reply.chat_model else "—"

    @admin.display(description="User", ordering="conversation__owner__username")
    def owner(self, reply: ProviderFailure) -> str:
        return reply.conversation.owner.get_username()

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ConversationSummary)
class ConversationSummaryAdmin(admin.ModelAdmin):
    list_display = ["conversation", "covers_through", "token_count", "model_name", "created_at"]
    list_select_related = ["conversation"]
    search_fields = ["text", "conversation__title"]
    raw_id_fields = ["conversation", "previous", "covers_through"]


@admin.register(UsageRecord)
class UsageRecordAdmin(admin.ModelAdmin):
    """The ledger, read-only, with totals by user, model and day of whatever is filtered."""

    list_display = [
        "created_at",
        "user",
        "kind",
        "provider_slug",
        "model_name",
        "prompt_tokens",
        "cached_tokens",
        "completion_tokens",
        "reasoning_tokens",
        "cost",
        "currency",
        "reported",
        "retried",
        "in_flight",
    ]
    list_filter = [
        "kind",
        "currency",
        "reported",
        "retried",
        "in_flight",
        "provider_slug",
        "model_name",
        ("user", admin.RelatedOnlyFieldListFilter),
    ]
    list_select_related = ["user"]
    search_fields = ["user__username", "model_name"]
    date_hierarchy = "created_at"
    raw_id_fields = ["user", "conversation", "message"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_urls(self):
        statement = path(
            "statement.csv",
            self.admin_site.admin_view(statements.statement_csv),
            name="conversations_usagerecord_statement",
        )
        return [statement, *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        month = usage.month_start()
        extra = {"statement_month": month, **(extra_context or {})}
        response = super().changelist_view(request, extra)
        changelist = getattr(response, "context_data", {}).get("cl")
        if changelist is not None:
            response.context_data.update(_ledger_totals(changelist.queryset))
        return response


def _ledger_totals(records) -> dict:
    by_day = ("day", TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
    by_model = usage.usage_totals_by(records, "provider_slug", "model_name")
    return {
        "totals": usage.totals_of(by_model),
        "totals_by_user": usage.usage_totals_by(records, "user__username"),
        "totals_by_model": by_model,
        "totals_by_day": usage.usage_totals_by(records, by_day),
    }


@admin.register(UsageBudget)
class UsageBudgetAdmin(admin.ModelAdmin):
    """Limits are edited here (an empty user is the site default); the list page also shows
    everyone at 80% or more of their budget this month, site default included."""

    list_display = ["__str__", "user", "token_limit", "money_limit", "currency", "updated_at"]
    list_editable = ["token_limit", "money_limit", "currency"]
    list_select_related = ["user"]
    search_fields = ["user__username"]
    raw_id_fields = ["user"]

    def changelist_view(self, request, extra_context=None):
        flagged = [
            {"status": status, "edit_url": _budget_edit_url(status)}
            for status in usage.budgets_near_or_over()
        ]
        return super().changelist_view(request, {"near_or_over": flagged, **(extra_context or {})})


def _budget_edit_url(status: usage.BudgetStatus) -> str:
    """The user's own budget to raise, or a new one for a user on the site default."""
    if status.budget is not None and status.budget.user_id is not None:
        return reverse("admin:conversations_usagebudget_change", args=[status.budget.pk])
    add_url = reverse("admin:conversations_usagebudget_add")
    return format_html("{}?user={}", add_url, status.user.pk if status.user else "")
