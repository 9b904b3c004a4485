"""Finding models through an endpoint's /models listing, and whether the endpoint answers.

Asking /models is also how a process learns that a configured provider cannot be reached
(or refuses its key): `make run` says so at start-up (manage.py discover_models), and the
model picker marks the provider, from this process's last look (at most every
CHECK_EVERY seconds, in a thread: a page never waits for a provider).
"""

import asyncio
import threading
import time

from django.db import close_old_connections

from conversations import services
from conversations.models import ChatModel, Provider
from conversations.providers import catalogue, transport

CHECK_EVERY = 600.0

# provider slug -> (when it was last asked, what it said)
_looks: dict[str, tuple[float, transport.ModelListing]] = {}
_looks_lock = threading.Lock()


async def _listing(provider: Provider, timeout: float) -> transport.ModelListing:
    credentials = catalogue.provider_credentials(provider)
    if credentials is None:
        return transport.ModelListing([])
    try:
        return await asyncio.wait_for(
            transport.list_models(credentials.base_url, credentials.api_key), timeout
        )
    except TimeoutError:
        return transport.ModelListing([], "no_answer", f"within {timeout:g} s")


def _remember(provider: Provider, listing: transport.ModelListing) -> None:
    with _looks_lock:
        _looks[provider.slug] = (time.monotonic(), listing)


def discover_models(provider: Provider, *, timeout: float = 5.0) -> list[ChatModel]:
    """Add the models `provider` lists that the catalogue lacks; [] when it lists none."""
    listing = asyncio.run(_listing(provider, timeout))
    _remember(provider, listing)
    return services.catalogue_add_discovered(provider=provider, names=listing.names)


NOTHING_WRONG = transport.ModelListing([])


def check_provider(provider: Provider, *, timeout: float = 5.0) -> transport.ModelListing:
    """Ask the provider's /models now."""
    listing = asyncio.run(_listing(provider, timeout))
    _remember(provider, listing)
    return listing


def provider_problem(provider: Provider) -> transport.ModelListing:
    """What this process last found when it asked the provider (NOTHING_WRONG when not yet
    asked); a look older than CHECK_EVERY is taken again in the background."""
    with _looks_lock:
        look = _looks.get(provider.slug)
        stale = look is None or time.monotonic() - look[0] > CHECK_EVERY
        if stale:  # one look at a time per provider: mark it taken now
            _looks[provider.slug] = (time.monotonic(), look[1] if look else NOTHING_WRONG)
    if stale:
        threading.Thread(target=_check_in_background, args=(provider,), daemon=True).start()
    return look[1] if look else NOTHING_WRONG


def _check_in_background(provider: Provider) -> None:
    try:
        check_provider(provider)
    finally:
        close_old_connections()


def forget_looks() -> None:
    """Forget every look taken (a test's provider set-up must not outlive the test)."""
    with _looks_lock:
        _looks.clear()
