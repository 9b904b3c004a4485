"""Writes of API tokens: create, revoke, and the throttled last-used stamp."""

import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth.models import User
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext

from api.models import ApiToken
from api.selectors import token_hash
from conversations.errors import ValidationFailed

# Recognisable in logs and by secret scanners.
TOKEN_PREFIX = "chs_"
# How many characters of the token the settings page shows.
DISPLAY_PREFIX_LENGTH = 12
# last_used_at is precise to about this much; saves a write on every request.
TOUCH_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True)
class CreatedToken:
    token: ApiToken
    # The only time the secret exists outside the client: show it once, then forget it.
    secret: str


def api_token_create(*, user: User, name: str) -> CreatedToken:
    name = name.strip()
    if not name:
        raise ValidationFailed(gettext("Give the token a name, so you can tell it apart later."))
    if len(name) > 80:
        raise ValidationFailed(gettext("Token names are at most 80 characters."))
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user,
        name=name,
        prefix=secret[:DISPLAY_PREFIX_LENGTH],
        key_hash=token_hash(secret),
    )
    return CreatedToken(token=token, secret=secret)


def api_token_revoke(*, user: User, token_id: int) -> bool:
    """Revoke one of the user's tokens; False if it is not theirs or already revoked."""
    updated = ApiToken.objects.filter(pk=token_id, user=user, revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    return updated == 1


def api_token_touch(*, token: ApiToken) -> None:
    """Stamp last use, unless it was stamped within TOUCH_INTERVAL."""
    now = timezone.now()
    stale = Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - TOUCH_INTERVAL)
    ApiToken.objects.filter(stale, pk=token.pk).update(last_used_at=now)
