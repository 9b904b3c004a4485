"""The ledger: one row per upstream call, priced when it was made, and monthly budgets."""

from decimal import Decimal

from django.conf import settings
from django.db import models


class Currency(models.TextChoices):
    CNY = "CNY", "CNY"
    USD = "USD", "USD"


class UsageKind(models.TextChoices):
    CHAT = "chat", "Chat"
    SUMMARY = "summary", "Summary"
    TITLE = "title", "Title"
    # Turning messages (or a recall query) into vectors through a provider.
    EMBEDDING = "embedding", "Embedding"


class UsageRecord(models.Model):
    """One upstream call, priced at the catalogue price of that moment."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="usage_records"
    )
    conversation = models.ForeignKey(
        "conversations.Conversation",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="usage",
    )
    message = models.ForeignKey(
        "conversations.Message",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="usage",
    )
    provider_slug = models.CharField(max_length=50)
    model_name = models.CharField(max_length=120)
    kind = models.CharField(max_length=10, choices=UsageKind.choices)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    reasoning_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    # False when the provider reported nothing (stream cut, no usage chunk) and we counted.
    reported = models.BooleanField(default=True)
    # An attempt that failed before any reply (429, 5xx, timeout, a rejected stream option)
    # and was sent again: it carries no tokens but is still an upstream call.
    retried = models.BooleanField(default=False)
    # Written as the call started and not yet closed: its tokens are the prompt's estimate.
    # One that stays open is a call whose process died mid-call (the provider still billed).
    in_flight = models.BooleanField(default=False)
    # Price snapshot per million tokens, so later catalogue edits never rewrite history.
    input_price = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal(0))
    cached_input_price = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal(0))
    output_price = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal(0))
    cost = models.DecimalField(max_digits=16, decimal_places=8, default=Decimal(0))
    currency = models.CharField(max_length=3, choices=Currency.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    # The moment the rates were taken for: the call's start (a reply's stream may end in
    # another price band than it began in), and the dated price and band they came from.
    priced_at = models.DateTimeField(null=True, blank=True)
    price = models.ForeignKey(
        "conversations.ModelPrice",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    price_band = models.CharField(max_length=40, blank=True)

    class Meta:
        indexes = [
            # Monthly usage and budget checks for one user.
            models.Index(fields=["user", "created_at"], name="usage_user_created"),
            # Provider health: every model's calls of the last hour, day or week.
            models.Index(fields=["created_at"], name="usage_created"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.model_name} {self.cost} {self.currency}"

    @property
    def estimated(self) -> bool:
        return not self.reported


class UsageBudget(models.Model):
    """A monthly allowance: the site default (user empty) or one user's own, which replaces
    the default as a whole. An empty limit means "no limit" of that kind."""

    # None: the site-wide default that applies to every user without a row of their own.
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="usage_budget",
    )
    # Prompt + completion tokens per calendar month (UTC), over every model and currency.
    token_limit = models.PositiveBigIntegerField(null=True, blank=True)
    # Money per calendar month in `currency`; spending in another currency is not counted
    # against it (amounts in different currencies are never added together).
    money_limit = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, choices=Currency.choices, default=Currency.USD)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            # At most one site default: NULL counts as a value here, so a second empty-user
            # row fails (per-user rows are unique through the one-to-one already).
            models.UniqueConstraint(
                fields=["user"], nulls_distinct=False, name="usagebudget_one_default"
            ),
        ]

    def __str__(self) -> str:
        return f"Budget of {self.user}" if self.user_id else "Site default budget"
