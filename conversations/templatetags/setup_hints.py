"""What the page says when no provider is set up: the variables that enable one."""

from django import template
from django.conf import settings

from conversations.providers import catalogue

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
