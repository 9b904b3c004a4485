"""Small readers for settings from the environment.

Each reader fails loudly: a malformed value raises ImproperlyConfigured naming the variable,
so a typo stops start-up instead of silently falling back to a default.
"""

import os
from collections.abc import Callable
from pathlib import Path
from typing import cast
from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default).strip()


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false, 1/0, yes/no), got {raw!r}")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def env_float(name: str, default: float, *, minimum: float | None = None) -> float:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, got {raw!r}") from None
    if minimum is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_url(name: str, *, schemes: set[str]) -> str:
    """An optional URL whose scheme must be one of `schemes`; empty means unset."""
    raw = env_str(name)
    if not raw:
        return ""
    parsed = urlparse(raw)
    if parsed.scheme not in schemes or not (parsed.netloc or parsed.path):
        allowed = ", ".join(sorted(schemes))
        raise ImproperlyConfigured(f"{name} must be a URL with scheme {allowed}, got {raw!r}")
    return raw


def database_config(name: str, embedded: Callable[[], str]) -> dict:
    """DATABASES['default'] from the URL in `name`, or from `embedded()` (the embedded
    PostgreSQL, started only then) when it is unset. PostgreSQL is the only database."""
    import dj_database_url

    raw = env_str(name) or embedded()
    try:
        # No health checks: they cost a `SELECT 1` before the first query of every
        # database_sync_to_async call, a third of a streaming reply's statements.
        config = dj_database_url.parse(raw, conn_max_age=60, conn_health_checks=False)
    except Exception as exc:  # dj_database_url raises several unrelated types
        raise ImproperlyConfigured(f"{name} is not a valid database URL: {exc}") from None
    if config.get("ENGINE") != "django.db.backends.postgresql":
        raise ImproperlyConfigured(f"{name} must name a PostgreSQL database, got {raw!r}")
    options = config.get("OPTIONS") or {}
    if not config.get("HOST") and options.get("host"):
        # A Unix socket folder given as ?host= (the embedded server's URL): where Django
        # and the URL the tests hand to their servers look for it.
        config["HOST"] = options.pop("host")
    return cast(dict, config)  # a TypedDict: a dict at run time


def var_dir() -> Path:
    """The folder of local state (embedded PostgreSQL data, uploads, metrics); git ignores it."""
    return Path(env_str("CHATSITE_VAR_DIR") or Path(__file__).resolve().parent.parent / "var")
