"""Admin of dated prices and their time bands, and re-pricing a model's usage on purpose:
a period chosen, its records' totals before and after shown, then confirmed and recorded
with who did it."""

from datetime import datetime, time, timedelta
from typing import cast

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from conversations import services, usage
from conversations.models import ChatModel, ModelPrice, PriceBand, Repricing


class PriceBandInline(admin.TabularInline):
    model = PriceBand
    extra = 0
    fields = [
        "label",
        "time_zone",
        "weekdays",
        "starts",
        "ends",
        "input_price",
        "cached_input_price",
        "output_price",
    ]


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    """A price from a moment on; a call is priced by the row in force at its start."""

    list_display = [
        "chat_model",
        "effective_from",
        "input_price",
        "cached_input_price",
        "output_price",
        "band_count",
        "source",
    ]
    list_filter = ["chat_model__provider"]
    list_select_related = ["chat_model__provider"]
    search_fields = ["chat_model__name"]
    inlines = [PriceBandInline]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("bands")

    @admin.display(description=_("Time bands"))
    def band_count(self, price: ModelPrice) -> int:
        return len(price.bands.all())


@admin.register(Repricing)
class RepricingAdmin(admin.ModelAdmin):
    """Who re-priced what, and the totals before and after: history, never edited."""

    list_display = [
        "done_at",
        "model_name",
        "starts",
        "ends",
        "done_by",
        "records",
        "cost_before",
        "cost_after",
    ]
    list_select_related = ["done_by"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class RepriceForm(forms.Form):
    first_day = forms.DateField(label=_("From (first day)"))
    last_day = forms.DateField(label=_("To (last day, included)"))

    def clean(self):
        cleaned = super().clean()
        first, last = cleaned.get("first_day"), cleaned.get("last_day")
        if first and last and last < first:
            raise ValidationError(gettext("The last day is before the first."))
        return cleaned

    def period(self) -> tuple[datetime, datetime]:
        """Midnight of the first day to midnight after the last, in the site's time zone."""
        first, last = self.cleaned_data["first_day"], self.cleaned_data["last_day"]
        starts = timezone.make_aware(datetime.combine(first, time.min))
        ends = timezone.make_aware(datetime.combine(last + timedelta(days=1), time.min))
        return starts, ends


def reprice_redirect(request: HttpRequest, queryset) -> HttpResponseRedirect | None:
    """The changelist action: one model at a time, on its own page."""
    if queryset.count() != 1:
        messages.error(request, gettext("Choose exactly one model to re-price."))
        return None
    url = reverse("admin:conversations_chatmodel_reprice", args=[queryset.get().pk])
    return HttpResponseRedirect(url)


def reprice_view(request: HttpRequest, chat_model_id: int) -> HttpResponse:
    """Choose a period, see what changes, confirm."""
    chat_model = get_object_or_404(ChatModel.objects.select_related("provider"), pk=chat_model_id)
    form = RepriceForm(request.POST or None)
    context = {
        "title": gettext("Re-price usage of %(model)s") % {"model": chat_model},
        "chat_model": chat_model,
        "form": form,
        "opts": ChatModel._meta,
    }
    if request.method == "POST" and form.is_valid():
        starts, ends = form.period()
        if "confirm" in request.POST:
            done = services.usage_reprice(
                chat_model=chat_model,
                starts=starts,
                ends=ends,
                done_by=cast(User, request.user),  # admin_view: a signed-in staff user
            )
            messages.success(
                request,
                gettext("%(count)s usage records re-priced.") % {"count": done.records},
            )
            return HttpResponseRedirect(reverse("admin:conversations_repricing_changelist"))
        context["preview"] = usage.reprice_preview(chat_model, starts, ends)
    return render(request, "admin/conversations/chatmodel/reprice.html", context)
