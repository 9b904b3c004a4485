"""`{{ part.kind|gauge_part_label }}`: what a segment of the header's context gauge holds,
in the reader's language (context/gauge.py names the parts)."""

from django import template
from django.utils.translation import gettext_lazy as _

register = template.Library()

PART_LABELS = {
    "system": _("System prompt"),
    "summary": _("Summary of earlier messages"),
    "recall": _("Recalled excerpts"),
    "turns": _("Messages sent verbatim"),
    "output": _("Kept for the reply"),
}


@register.filter
def gauge_part_label(kind: str) -> str:
    return str(PART_LABELS.get(kind, kind))
