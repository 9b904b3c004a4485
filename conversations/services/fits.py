"""A message the model's window cannot hold even on its own is refused when it is sent,
with the sizes, rather than sent to overflow the window (or cut without the user knowing)."""

from django.utils.translation import gettext

from conversations.context.window import (
    context_budget,
    conversation_counter,
    message_tokens,
    system_prompt_tokens,
)
from conversations.errors import ValidationFailed
from conversations.models import Conversation, Message, Role


def require_fits_window(conversation: Conversation, content: str) -> None:
    counter = conversation_counter(conversation)
    room = context_budget(conversation) - system_prompt_tokens(conversation, counter)
    needed = message_tokens(Message(role=Role.USER, content=content), counter)
    if needed > room:
        raise ValidationFailed(
            gettext(
                "That message is about %(needed)s tokens, more than this model's window holds "
                "for one message (about %(room)s). Shorten it, or choose a model with a larger "
                "window."
            )
            % {"needed": f"{needed:,}", "room": f"{max(room, 0):,}"}
        )
