"""`{% for group in conversations|date_groups %}`: the sidebar's Today / Yesterday / ... groups.

A filter rather than a context variable so every page that lists `conversations` (the chat
pages, the API settings page, htmx refreshes) gets the groups without each view asking.
"""

from django import template

from conversations import selectors

register = template.Library()


@register.filter
def date_groups(conversations) -> list[selectors.ConversationGroup]:
    return selectors.conversation_groups(list(conversations or []))
