"""Finding models through an endpoint's /models listing."""

import asyncio

from conversations import services
from conversations.models import ChatModel, Provider
from conversations.providers import catalogue, transport


async def _names(provider: Provider, timeout: float) -> list[str]:
    credentials = catalogue.provider_credentials(provider)
    if credentials is None:
        return []
    try:
        return await asyncio.wait_for(
            transport.list_models(credentials.base_url, credentials.api_key), timeout
        )
    except TimeoutError:
        return []


def discover_models(provider: Provider, *, timeout: float = 5.0) -> list[ChatModel]:
    """Add the models `provider` lists that the catalogue lacks; [] when it lists none."""
    names = asyncio.run(_names(provider, timeout))
    return services.catalogue_add_discovered(provider=provider, names=names)
