"""The window a request fills: how many prompt tokens it may use and how much room the reply
keeps, which messages may be sent again, what each message counts as in tokens (images
included) and what it sends (its text, or text and image parts)."""

import base64

from django.conf import settings

from conversations.models import Attachment, Conversation, Message, MessageStatus, Role
from conversations.selectors import message_images
from conversations.tokens import PER_MESSAGE_OVERHEAD, TokenCounter, token_counter

# Room for what token estimates get wrong.
CONTEXT_SAFETY_MARGIN = 0.9


def reply_max_output(conversation: Conversation) -> int:
    chat_model = conversation.chat_model
    ceiling = chat_model.max_output if chat_model else 4096
    return min(conversation.max_tokens or ceiling, ceiling)


def context_window(conversation: Conversation) -> int:
    """The model's whole window, prompt and reply together."""
    chat_model = conversation.chat_model
    return chat_model.context_window if chat_model else 8192


def context_budget(conversation: Conversation) -> int:
    """Prompt tokens a request may use: the window less the reply's room, with a margin."""
    window = context_window(conversation)
    return max(int((window - reply_max_output(conversation)) * CONTEXT_SAFETY_MARGIN), 256)


def summary_reserve() -> int:
    """What a request keeps for the summary it carries (or may find at the end of its walk)."""
    return settings.SUMMARY_MAX_TOKENS + PER_MESSAGE_OVERHEAD


def sendable(message: Message) -> bool:
    if message.role == Role.USER:
        return True
    return message.status in MessageStatus.REUSABLE and bool(message.content)


def conversation_counter(conversation: Conversation) -> TokenCounter:
    """How the conversation's model counts tokens (tokens.py)."""
    return token_counter(conversation.chat_model)


# What one image is counted as. Providers bill images by resolution and tile (OpenAI's
# low detail is 85 tokens, a 1024px image at high detail ~765, Qwen-VL up to ~1,300); we
# never decode the image, so a flat, slightly generous figure keeps the window safe.
IMAGE_TOKENS = 1000
IMAGE_OMITTED = "[image omitted: the current model cannot see images]"


def _images(message: Message) -> list[Attachment]:
    """A user message's images; the thread walk loaded them, so no query per message."""
    return message_images(message)


def message_tokens(message: Message, counter: TokenCounter) -> int:
    return message_cost(message, counter)[0]


def message_cost(message: Message, counter: TokenCounter) -> tuple[int, tuple[int, int]]:
    """What a message counts as (images included), and its text's raw parts for calibration."""
    parts = counter.raw_message(message.role, message.content)
    return counter.calibrated(parts) + IMAGE_TOKENS * len(_images(message)), parts


CUT_MARKER = "\n\n[… {count} characters cut here to fit the model's context window …]\n\n"


def cut_to_fit(message: Message, room: int, counter: TokenCounter) -> int:
    """Cut the middle out of a message too large for `room` tokens, in memory only (the
    stored message stays whole): its beginning and its end are what a pasted document or
    log is asked about. Returns the characters cut (0: it fitted)."""
    needed = message_tokens(message, counter)
    if needed <= room:
        return 0
    text = message.content
    text_room = room - IMAGE_TOKENS * len(_images(message))

    def cost(kept: int) -> int:
        return counter.message(message.role, _middle_cut(text, kept))

    # Start from the share that fits at this text's own tokens per character, then shrink:
    # a few counts, where bisecting would tokenize the whole text a dozen times.
    kept = int(len(text) * max(text_room, 0) / needed)
    while kept > 0 and cost(kept) > text_room:
        kept = int(kept * 0.9)
    message.content = _middle_cut(text, kept)
    return len(text) - kept


def _middle_cut(text: str, kept: int) -> str:
    head, tail = text[: (kept + 1) // 2], text[len(text) - kept // 2 :] if kept > 1 else ""
    return head + CUT_MARKER.format(count=len(text) - kept) + tail


def system_prompt_tokens(conversation: Conversation, counter: TokenCounter) -> int:
    """What the conversation's own system prompt takes of every request."""
    return counter.message(Role.SYSTEM, conversation.system_prompt)


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
