"""`{% model_controls chat_model as controls %}`: what the model's provider honours
(providers/profiles.py `controls`), so the settings and the composer offer only that."""

from django import template

from conversations.providers import profiles

register = template.Library()


@register.simple_tag
def model_controls(chat_model) -> profiles.Controls | None:
    return profiles.controls(chat_model) if chat_model else None
