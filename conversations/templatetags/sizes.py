"""`{{ count|human_size }}`: a number of bytes as people read it (conversations.sizes)."""

from django import template

from conversations.sizes import human_size as _human_size

register = template.Library()


@register.filter
def human_size(count) -> str:
    return _human_size(count)
