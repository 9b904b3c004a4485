"""Whether a browser session still signs its user in: what a chat socket asks before each
action, since the socket outlives the page that opened it."""

from importlib import import_module
from types import SimpleNamespace
from typing import cast

from django.conf import settings
from django.contrib.auth import get_user
from django.http import HttpRequest


def session_user_id(session_key: str | None) -> int | None:
    """The id of the active user `session_key` signs in, or None: the session was ended
    (a logout, an admin's deletion, expiry), the password changed since (the session's auth
    hash no longer matches) or the account was deactivated. Django's own rules, by
    `get_user`: two reads, the session row and the user."""
    if not session_key:
        return None
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    # Duck-typed: get_user reads only a request's session.
    user = get_user(cast(HttpRequest, SimpleNamespace(session=store)))
    return user.pk if user.is_authenticated else None
