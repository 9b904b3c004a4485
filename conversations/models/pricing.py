"""Dated and time-banded prices: what a model costs from a moment on, and in which hours.

A model's base price lives on ChatModel (in force before its first dated row, and always for
a model that has none). A ModelPrice row changes it from `effective_from` on; its PriceBands
give other rates for some hours of some weekdays in a time zone (DeepSeek's peak hours in
Beijing time). Each usage record is priced by the row and band in force at its call's start
and keeps a snapshot of the rates, so later edits never rewrite it; only a Repricing, done
on purpose in the admin, does, and it records who did it.
"""

from decimal import Decimal
from zoneinfo import available_timezones

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models


def _rate() -> models.DecimalField:
    """A rate per million tokens, as precise as the catalogue's."""
    return models.DecimalField(max_digits=12, decimal_places=6, default=Decimal(0))


WEEKDAY_DIGITS = "1234567"  # ISO weekdays: 1 is Monday, 7 Sunday


def _validate_time_zone(value: str) -> None:
    if value not in available_timezones():
        raise ValidationError(f"{value!r} is not a time zone (e.g. Asia/Shanghai, UTC).")


def _validate_weekdays(value: str) -> None:
    if not value or any(c not in WEEKDAY_DIGITS for c in value) or len(set(value)) != len(value):
        raise ValidationError("Weekdays as ISO digits, 1 Monday to 7 Sunday, e.g. 12345.")


class ModelPrice(models.Model):
    """A model's rates per million tokens from `effective_from` on."""

    chat_model = models.ForeignKey(
        "conversations.ChatModel", on_delete=models.CASCADE, related_name="prices"
    )
    effective_from = models.DateTimeField()
    input_price = _rate()
    cached_input_price = _rate()
    output_price = _rate()
    # Where the figures come from (the provider's pricing page, an announcement).
    source = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["chat_model", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["chat_model", "effective_from"], name="price_one_per_moment"
            )
        ]

    def __str__(self) -> str:
        return f"{self.chat_model} from {self.effective_from:%Y-%m-%d %H:%M}"


class PriceBand(models.Model):
    """Other rates inside a dated price for some hours (`starts` to `ends`, local time in
    `time_zone`) of some weekdays. `ends` at or before `starts` runs past midnight; equal
    times cover the whole day. The first band that matches a moment wins."""

    price = models.ForeignKey(ModelPrice, on_delete=models.CASCADE, related_name="bands")
    label = models.CharField(max_length=40, help_text="Shown on each record, e.g. peak.")
    time_zone = models.CharField(
        max_length=64, default="Asia/Shanghai", validators=[_validate_time_zone]
    )
    weekdays = models.CharField(
        max_length=7,
        default="12345",
        validators=[_validate_weekdays],
        help_text="ISO weekdays the band applies on: 1 Monday … 7 Sunday.",
    )
    starts = models.TimeField()
    ends = models.TimeField()
    input_price = _rate()
    cached_input_price = _rate()
    output_price = _rate()

    class Meta:
        ordering = ["price", "id"]

    def __str__(self) -> str:
        return f"{self.label} {self.starts:%H:%M}-{self.ends:%H:%M} {self.time_zone}"


class Repricing(models.Model):
    """Usage records of one model and period priced again on purpose, and by whom."""

    chat_model = models.ForeignKey(
        "conversations.ChatModel", on_delete=models.SET_NULL, null=True, related_name="+"
    )
    model_name = models.CharField(max_length=120)
    starts = models.DateTimeField()
    ends = models.DateTimeField()
    done_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    done_at = models.DateTimeField(auto_now_add=True)
    records = models.PositiveIntegerField(default=0)
    # {currency: "amount"} before and after, as text so the exact decimals survive JSON.
    cost_before = models.JSONField(default=dict)
    cost_after = models.JSONField(default=dict)

    class Meta:
        ordering = ["-done_at"]

    def __str__(self) -> str:
        return f"{self.model_name} {self.starts:%Y-%m-%d}…{self.ends:%Y-%m-%d}"
