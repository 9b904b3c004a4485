"""Per-user abuse limits, counted in the shared cache (Redis whenever REDIS_URL is set).

Counters are fixed windows: cheap, shared by every web process, and forgotten by the cache
on their own when the window ends.
"""

import hashlib
import time

from django.conf import settings
from django.core.cache import cache


def _count(key: str, *, window: int) -> int:
    """Add one to `key`'s counter for the current window and return the new total."""
    cache.add(key, 0, timeout=window)
    try:
        return cache.incr(key)
    except ValueError:  # expired between the two calls
        cache.set(key, 1, timeout=window)
        return 1


def send_allowed(user_id: int) -> bool:
    """Count one send for this user; False once this minute's allowance is used."""
    minute = int(time.time() // 60)
    sent = _count(f"limits:send:{user_id}:{minute}", window=60)
    return sent <= settings.SEND_RATE_LIMIT_PER_MINUTE


def _login_key(username: str, address: str) -> str:
    # Hashed: a username may hold characters a cache key may not.
    raw = f"{username.strip().lower()}|{address}".encode()
    return "limits:login:" + hashlib.sha256(raw).hexdigest()


def login_locked(username: str, address: str) -> bool:
    failures = cache.get(_login_key(username, address), 0)
    return failures >= settings.LOGIN_FAILURE_LIMIT


def login_failed(username: str, address: str) -> None:
    _count(_login_key(username, address), window=settings.LOGIN_FAILURE_WINDOW)


def login_succeeded(username: str, address: str) -> None:
    cache.delete(_login_key(username, address))
