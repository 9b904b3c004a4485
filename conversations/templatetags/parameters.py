"""`{% accepted_parameters chat_model as accepted %}`: what the model's endpoint takes
(providers/parameters.py), so the settings offer only what it honours."""

from django import template

from conversations.providers import parameters

register = template.Library()


@register.simple_tag
def accepted_parameters(chat_model) -> parameters.Accepted | None:
    return parameters.accepted(chat_model) if chat_model else None
