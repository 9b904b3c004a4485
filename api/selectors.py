"""Reads of API tokens."""

import hashlib

from django.contrib.auth.models import User

from api.models import ApiToken


def token_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_token_list_for_user(user: User) -> list[ApiToken]:
    """The user's live tokens, newest first."""
    return list(ApiToken.objects.filter(user=user, revoked_at__isnull=True))


def api_token_for_secret(secret: str) -> ApiToken | None:
    """The live token whose secret this is, with its user; None for unknown or revoked."""
    return (
        ApiToken.objects.select_related("user")
        .filter(key_hash=token_hash(secret), revoked_at__isnull=True, user__is_active=True)
        .first()
    )
