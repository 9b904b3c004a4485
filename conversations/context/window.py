"""The window a request fills: how many prompt tokens it may use and how much room the reply
keeps, which messages may be sent again, what each message counts as in tokens (images
included) and what it sends (its text, or text and image parts)."""

import base64

from conversations.models import Attachment, Conversation, Message, MessageStatus, Role
from conversations.selectors import message_images
from conversations.tokens import estimate_message_tokens

# Room for what token estimates get wrong.
CONTEXT_SAFETY_MARGIN = 0.9


def reply_max_output(conversation: Conversation) -> int:
    chat_model = conversation.chat_model
    ceiling = chat_model.max_output if chat_model else 4096
    return min(conversation.max_tokens or ceiling, ceiling)


def context_budget(conversation: Conversation) -> int:
    """Prompt tokens a request may use: the window less the reply's room, with a margin."""
    chat_model = conversation.chat_model
    window = chat_model.context_window if chat_model else 8192
    return max(int((window - reply_max_output(conversation)) * CONTEXT_SAFETY_MARGIN), 256)


def sendable(message: Message) -> bool:
    if message.role == Role.USER:
        return True
    return message.status in MessageStatus.REUSABLE and bool(message.content)


def token_ratio(conversation: Conversation) -> float:
    return conversation.chat_model.token_ratio if conversation.chat_model else 1.0


# What one image is counted as. Providers bill images by resolution and tile (OpenAI's
# low detail is 85 tokens, a 1024px image at high detail ~765, Qwen-VL up to ~1,300); we
# never decode the image, so a flat, slightly generous figure keeps the window safe.
IMAGE_TOKENS = 1000
IMAGE_OMITTED = "[image omitted: the current model cannot see images]"


def _images(message: Message) -> list[Attachment]:
    """A user message's images; the thread walk loaded them, so no query per message."""
    return message_images(message)


def message_tokens(message: Message, ratio: float = 1.0) -> int:
    text = int(estimate_message_tokens(message.role, message.content) * ratio) + 1
    return text + IMAGE_TOKENS * len(_images(message))


def system_prompt_tokens(conversation: Conversation, ratio: float) -> int:
    """What the conversation's own system prompt takes of every request."""
    return message_tokens(Message(role=Role.SYSTEM, content=conversation.system_prompt), ratio)


def _data_url(attachment: Attachment) -> str:
    # Read from our own storage: the app never fetches a URL a user or a model supplied.
    with attachment.file.open("rb") as handle:
        encoded = base64.b64encode(handle.read()).decode("ascii")
    return f"data:{attachment.content_type};base64,{encoded}"


def message_content(message: Message, *, vision: bool) -> str | list[dict]:
    """What a message sends: its text, or text and image parts when it carries images."""
    images = _images(message)
    if not images:
        return message.content
    if not vision:
        return f"{message.content}\n\n{IMAGE_OMITTED}".strip()
    parts: list[dict] = [{"type": "text", "text": message.content}] if message.content else []
    return parts + [{"type": "image_url", "image_url": {"url": _data_url(a)}} for a in images]
