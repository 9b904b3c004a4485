"""Provider health: the incidents opened when a model's error rate or first-token time
crosses its threshold (services/provider_health.py opens and closes them)."""

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class IncidentKind(models.TextChoices):
    # Failed upstream calls over all calls, in the ledger (a fraction, 0..1).
    ERROR_RATE = "error_rate", _("Error rate")
    # The 95th percentile of the replies' time to first token (seconds).
    TTFT_P95 = "ttft_p95", _("TTFT p95")


class ProviderIncident(models.Model):
    """A span of time during which one model of a provider was over one of its thresholds.

    Opened when a check finds the condition over the alert window (with enough calls),
    e-mailed once, closed when a later check finds it cleared; a new crossing after that is
    a new incident."""

    chat_model = models.ForeignKey(
        "conversations.ChatModel", on_delete=models.CASCADE, related_name="incidents"
    )
    kind = models.CharField(max_length=10, choices=IncidentKind.choices)
    opened_at = models.DateTimeField()
    # Null while open: the app's banner and the next checks look for exactly these.
    closed_at = models.DateTimeField(null=True, blank=True)
    # The figure that crossed and the threshold it crossed, when the incident opened, in the
    # kind's unit (a fraction for the error rate, seconds for the TTFT).
    value = models.FloatField()
    threshold = models.FloatField()
    # How many calls (error rate) or timed replies (TTFT) the figure was computed over.
    samples = models.PositiveIntegerField()
    # Set by the one e-mail of the incident, before it is sent (claimed, so never two).
    emailed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-opened_at"]
        verbose_name = "provider incident"
        # The admin's health page is this model's list (its figures above the incidents).
        verbose_name_plural = "provider health"
        constraints = [
            # At most one open incident per model and kind: two processes checking at once
            # cannot both open one (the loser's insert fails and it sends nothing). Its
            # partial index also serves the banner's read of the open incidents.
            models.UniqueConstraint(
                fields=["chat_model", "kind"],
                condition=Q(closed_at__isnull=True),
                name="incident_one_open_per_model_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of {self.chat_model_id} since {self.opened_at}"

    @property
    def is_open(self) -> bool:
        return self.closed_at is None

    def display(self, figure: float) -> str:
        """`figure` (the value or the threshold) in the kind's unit: "45%", "12.5 s"."""
        if self.kind == IncidentKind.ERROR_RATE:
            return f"{figure:.0%}"
        return f"{figure:.1f} s"
