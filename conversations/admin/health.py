"""The admin's provider health page: each model's error rate, first-token times and duration
over the last hour, day and week, above the list of incidents (open first, newest first).

Every staff account may read it (the banner that links here is shown to all of them); nobody
edits an incident by hand: the check opens and closes them.
"""

from django.conf import settings
from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from conversations import selectors, services
from conversations.models import ProviderIncident


class IncidentStateFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("open", _("Open")), ("closed", _("Closed"))]

    def queryset(self, request, queryset):
        if self.value() in ("open", "closed"):
            return queryset.filter(closed_at__isnull=self.value() == "open")
        return queryset


@admin.register(ProviderIncident)
class ProviderHealthAdmin(admin.ModelAdmin):
    list_display = [
        "opened_at",
        "provider",
        "chat_model",
        "kind",
        "value_shown",
        "threshold_shown",
        "samples",
        "closed_at",
        "emailed_at",
    ]
    list_filter = [IncidentStateFilter, "kind", "chat_model__provider"]
    list_select_related = ["chat_model__provider"]

    def changelist_view(self, request, extra_context=None):
        # The check first, so that the page shows what it just decided (and mails it).
        services.provider_health_check_all()
        context = {
            "title": _("Provider health"),
            "health": selectors.provider_health_report(),
            "alert_minutes": settings.PROVIDER_HEALTH_ALERT_WINDOW // 60,
            "min_calls": settings.PROVIDER_HEALTH_MIN_CALLS,
            **(extra_context or {}),
        }
        return super().changelist_view(request, context)

    @admin.display(description=_("Provider"), ordering="chat_model__provider__name")
    def provider(self, incident: ProviderIncident) -> str:
        return incident.chat_model.provider.name

    @admin.display(description=_("Value"))
    def value_shown(self, incident: ProviderIncident) -> str:
        return incident.display(incident.value)

    @admin.display(description=_("Threshold"))
    def threshold_shown(self, incident: ProviderIncident) -> str:
        return incident.display(incident.threshold)

    def has_module_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
