"""Personal API tokens. Only `api/services.py` writes these rows."""

from django.conf import settings
from django.db import models
from django.db.models import Q


class ApiToken(models.Model):
    """A personal token sent as `Authorization: Bearer <token>`.

    The token itself is shown once when created and never stored: only its SHA-256 is kept,
    so a leaked database does not leak working tokens.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    # The user's own label ("laptop backup script").
    name = models.CharField(max_length=80)
    # The first characters of the token, shown on the settings page so a user can tell tokens
    # apart; too short to help guess the rest.
    prefix = models.CharField(max_length=12)
    # Hex SHA-256 of the whole token; tokens are 256 random bits, so no salt or slow hash is
    # needed and the lookup stays one indexed equality.
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Written at most about once a minute (see services.api_token_touch), not per request.
    last_used_at = models.DateTimeField(null=True, blank=True)
    # Set once by api_token_revoke; a revoked token never authenticates again.
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # api_token_list_for_user: the settings page lists a user's live tokens.
            models.Index(
                fields=["user", "-created_at"],
                condition=Q(revoked_at__isnull=True),
                name="apitoken_user_live",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
