"""`{% provider_health_banner %}`: staff see which provider/model is unhealthy on every page;
and the health page's figures as text (`{{ rate|percent }}`, `{{ ms|seconds }}`).

A tag rather than a context processor: the pages that show the banner say so where it goes
(app.html, the admin's base), and a page without it costs nothing.
"""

from django import template
from django.urls import reverse

from conversations import selectors

register = template.Library()


@register.inclusion_tag("conversations/_provider_health_banner.html", takes_context=True)
def provider_health_banner(context, *, in_admin: bool = False) -> dict:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not (user.is_active and user.is_staff):
        return {"unhealthy": []}
    return {
        "unhealthy": selectors.provider_health_banner(),
        "health_url": reverse("admin:conversations_providerincident_changelist"),
        "in_admin": in_admin,
    }


@register.filter
def percent(fraction: float | None) -> str:
    """0.4523 -> "45.2%"; nothing to show -> "—"."""
    return "—" if fraction is None else f"{fraction * 100:.1f}%"


@register.filter
def seconds(milliseconds: float | None) -> str:
    """1234.5 (ms) -> "1.23 s"; nothing to show -> "—"."""
    return "—" if milliseconds is None else f"{milliseconds / 1000:.2f} s"
