"""Conversations themselves: creation and settings."""

from django.contrib.auth.models import AbstractBaseUser

from conversations import selectors
from conversations.errors import ValidationFailed
from conversations.models import ChatModel, Conversation


def conversation_create(
    *,
    owner: AbstractBaseUser,
    chat_model: ChatModel | None = None,
    title: str = "",
    system_prompt: str = "",
) -> Conversation:
    if chat_model is None:
        chat_model = selectors.default_chat_model()
    return Conversation.objects.create(
        owner=owner, chat_model=chat_model, title=title[:200], system_prompt=system_prompt
    )


def conversation_update_settings(
    *, conversation: Conversation, chat_model: ChatModel | None, system_prompt: str
) -> Conversation:
    """Switch model or system prompt; later replies use them, earlier ones keep theirs."""
    if chat_model is None:
        raise ValidationFailed("Choose one of the available models.")
    conversation.chat_model = chat_model
    conversation.system_prompt = system_prompt.strip()
    conversation.save(update_fields=["chat_model", "system_prompt", "updated_at"])
    return conversation
