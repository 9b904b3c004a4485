"""What the page says about providers: the variables that enable one when none is set up,
and a configured one that could not be reached."""

from django import template
from django.conf import settings

from conversations.providers import catalogue, discovery

register = template.Library()


@register.simple_tag
def provider_key_variables() -> list[str]:
    """`DEEPSEEK_API_KEY` and the like, one per built-in provider with a key."""
    return [
        f"{prefix}_API_KEY"
        for slug, prefix in settings.PROVIDER_ENV_PREFIXES.items()
        if slug != "local"
    ]


@register.simple_tag
def enabled_provider_names() -> list[str]:
    """Providers whose key or address is set (asked only when none offers a model)."""
    return [provider.name for provider in catalogue.enabled_providers()]


@register.simple_tag
def provider_problem(provider) -> str:
    """Why this process could not use the provider at its last look ("" when it could)."""
    return discovery.provider_problem(provider).problem
