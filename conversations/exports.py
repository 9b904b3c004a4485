"""Export: conversations as chatsite JSON, readable Markdown, fine-tuning JSONL, or Open
WebUI's chat export (what its "Import chats" reads).

Everything here reads, and every export is a generator of text pieces: conversations and
their messages are fetched with `.iterator(chunk_size=...)` and written out one at a time,
so exporting a 10,000-message history holds about one chunk of rows in memory, not the
history. The import (which writes) lives in `conversations/services/imports/` and reads
the JSON format defined here.

The JSON format, version 1::

    {"format": "chatsite.conversations", "version": 1, "exported_at": "...",
     "conversations": [{"id", "title", "title_from_user", "archived", "created_at",
        "updated_at", "model": {"provider", "name"} | null, "parameters": {...},
        "current_leaf": a message's "id" | null,
        "messages": [{"id", "parent", "role", "content", "reasoning", "status", ...,
            "attachments": [{"name", "content_type", "size", "width", "height", "data"}]}],
        "summaries": [{"covers_through", "previous", "text", ...}]}]}

Messages are the whole tree (every branch) in creation order; `parent` is another message's
`id`. The thread on screen is the path from `current_leaf` (when null, the newest message) up
to the root. A message's `attachments` are its images with their bytes
(conversations/export_images.py). Fields added within version 1 (`current_leaf`,
`usage.reasoning_ms`, `attachments`) are optional on import.
"""

import json
from collections.abc import Generator, Iterable, Iterator
from datetime import datetime

from django.utils import timezone

from conversations import selectors
from conversations.export_images import image_document
from conversations.exports_openwebui import export_openwebui
from conversations.models import (
    ChatModel,
    Conversation,
    ConversationSummary,
    Message,
    MessageStatus,
    Role,
)
from conversations.providers import catalogue

FORMAT = "chatsite.conversations"
VERSION = 1
EXPORT_FORMATS = ("json", "md", "jsonl", "openwebui")
MEDIA_TYPES = {
    "json": "application/json",
    "md": "text/markdown; charset=utf-8",
    "jsonl": "application/x-ndjson",
    "openwebui": "application/json",
}
# The file name's extension of each format.
EXTENSIONS = {"json": "json", "md": "md", "jsonl": "jsonl", "openwebui": "openwebui.json"}
# Rows fetched per round trip while streaming; bounds the memory an export holds.
CHUNK_SIZE = 500
# Pieces are joined into blocks of about this size before they reach the response.
BLOCK_SIZE = 64 * 1024

PARAMETER_FIELDS = (
    "system_prompt",
    "temperature",
    "top_p",
    "max_tokens",
    "stop",
    "thinking_enabled",
    "thinking_budget",
    "json_mode",
)
USAGE_FIELDS = (
    "prompt_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "cached_tokens",
    "time_to_first_token_ms",
    "duration_ms",
    "reasoning_ms",
)


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _model(chat_model: ChatModel | None) -> dict | None:
    if chat_model is None:
        return None
    return {"provider": chat_model.provider.slug, "name": chat_model.name}


def _dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False)


# --- Documents -------------------------------------------------------------------------


def conversation_header(conversation: Conversation) -> dict:
    """The conversation without its messages and summaries."""
    return {
        "id": str(conversation.uuid),
        "title": conversation.title,
        "title_from_user": conversation.title_from_user,
        "archived": conversation.archived,
        "created_at": _time(conversation.created_at),
        "updated_at": _time(conversation.updated_at),
        "model": _model(conversation.chat_model),
        "parameters": {name: getattr(conversation, name) for name in PARAMETER_FIELDS},
        "current_leaf": _current_leaf(conversation),
    }


def _current_leaf(conversation: Conversation) -> str | None:
    """The last message of the branch on screen; None: the newest message (the default)."""
    if conversation.current_leaf_id is None:
        return None
    return str(selectors.message_uuid(conversation.current_leaf_id))


class ChatModels(dict):
    """Chat models by id, each read once: a history names only a handful."""

    def __missing__(self, pk: int) -> ChatModel | None:
        self[pk] = catalogue.chat_model_with_provider(pk)
        return self[pk]


def message_document(
    message: Message, chat_models: ChatModels | None = None, images: list | None = None
) -> dict:
    """One message, from selectors.conversation_messages (which annotates `parent_uuid`);
    with `chat_models`, its model comes from there instead of a join; `images`: its
    attachments (selectors.conversation_images), written with their bytes."""
    parent_uuid = message.parent_uuid  # type: ignore[attr-defined]
    if chat_models is None:
        chat_model = message.chat_model
    else:
        chat_model = chat_models[message.chat_model_id] if message.chat_model_id else None
    return {
        "id": str(message.uuid),
        "parent": str(parent_uuid) if parent_uuid else None,
        "role": message.role,
        "content": message.content,
        "reasoning": message.reasoning,
        "status": message.status,
        "finish_reason": message.finish_reason,
        "error_code": message.error_code,
        "error_text": message.error_text,
        "model": _model(chat_model),
        "model_name": message.model_name,
        "usage": {name: getattr(message, name) for name in USAGE_FIELDS},
        "context": message.context,
        "created_at": _time(message.created_at),
        "completed_at": _time(message.completed_at),
        "attachments": [image_document(image) for image in images or ()],
    }


def summary_document(summary: ConversationSummary) -> dict:
    previous = summary.previous
    return {
        "covers_through": str(summary.covers_through.uuid),
        # Summaries have no public id; (conversation, covers_through) is unique, so the
        # previous summary is named by the message it covers through.
        "previous": str(previous.covers_through.uuid) if previous else None,
        "text": summary.text,
        "token_count": summary.token_count,
        "model_name": summary.model_name,
        "created_at": _time(summary.created_at),
    }


# --- JSON ------------------------------------------------------------------------------


def _conversation_json(conversation: Conversation) -> Iterator[str]:
    header = _dumps(conversation_header(conversation))
    yield header[:-1] + ', "messages": ['
    messages = selectors.conversation_messages(conversation, with_models=False)
    chat_models = ChatModels()
    images = selectors.conversation_images(conversation)
    for index, message in enumerate(messages.iterator(chunk_size=CHUNK_SIZE)):
        document = message_document(message, chat_models, images.get(message.id))
        # One message per line: diffable, greppable, and the line count is the message count.
        yield ("," if index else "") + _dumps(document) + "\n"
    yield '], "summaries": '
    summaries = selectors.conversation_summaries(conversation).iterator(chunk_size=CHUNK_SIZE)
    yield _dumps([summary_document(summary) for summary in summaries])
    yield "}"


def export_json(conversations: Iterable[Conversation]) -> Iterator[str]:
    envelope = {"format": FORMAT, "version": VERSION, "exported_at": _time(timezone.now())}
    yield _dumps(envelope)[:-1] + ', "conversations": ['
    for index, conversation in enumerate(conversations):
        if index:
            yield ","
        yield from _conversation_json(conversation)
    yield "]}"


# --- Threads (Markdown and JSONL) ------------------------------------------------------


def _thread(conversation: Conversation) -> Iterator[Message]:
    """The thread on screen, oldest first, streamed."""
    wanted = selectors.conversation_thread_ids(conversation)
    for message in selectors.conversation_messages(conversation).iterator(chunk_size=CHUNK_SIZE):
        if message.id in wanted:
            yield message


def _markdown_message(message: Message) -> str:
    heading = f"### {Role(message.role).label}"
    if message.role == Role.ASSISTANT and message.model_name:
        heading += f" · {message.model_name}"
    parts = [heading, f"*{message.created_at:%Y-%m-%d %H:%M}*"]
    if message.reasoning:
        # Raw HTML is allowed in Markdown: most renderers show this as a collapsed section.
        parts.append(
            f"<details>\n<summary>Reasoning</summary>\n\n{message.reasoning.strip()}\n\n</details>"
        )
    if message.content:
        parts.append(message.content.strip())
    if message.status != MessageStatus.COMPLETE:
        note = f"*({MessageStatus(message.status).label}"
        parts.append(note + (f": {message.error_text})*" if message.error_text else ")*"))
    return "\n\n".join(parts) + "\n\n"


def _conversation_markdown(conversation: Conversation) -> Iterator[str]:
    lines = [f"# {conversation.display_title}", ""]
    if conversation.chat_model:
        lines.append(f"- Model: {conversation.chat_model}")
    lines.append(f"- Created: {conversation.created_at:%Y-%m-%d %H:%M %Z}")
    lines.append(f"- Updated: {conversation.updated_at:%Y-%m-%d %H:%M %Z}")
    if conversation.system_prompt:
        quoted = "\n".join(f"> {line}" for line in conversation.system_prompt.splitlines())
        lines += ["", "**System prompt**", "", quoted]
    yield "\n".join(lines) + "\n\n---\n\n"
    for message in _thread(conversation):
        yield _markdown_message(message)


def export_markdown(conversations: Iterable[Conversation]) -> Iterator[str]:
    for index, conversation in enumerate(conversations):
        if index:
            yield "\n\n"
        yield from _conversation_markdown(conversation)


# --- JSONL (fine-tuning) ---------------------------------------------------------------


def _trainable(message: Message) -> bool:
    if not message.content:
        return False
    return message.role != Role.ASSISTANT or message.status in MessageStatus.REUSABLE


def _conversation_jsonl(conversation: Conversation) -> Iterator[str]:
    """One line `{"messages": [{"role", "content"}, ...]}`, the shape fine-tuning takes."""
    yield '{"messages": ['
    written = 0
    if conversation.system_prompt:
        yield _dumps({"role": Role.SYSTEM.value, "content": conversation.system_prompt})
        written += 1
    for message in _thread(conversation):
        if _trainable(message):
            yield ("," if written else "") + _dumps(
                {"role": message.role, "content": message.content}
            )
            written += 1
    yield "]}\n"


def export_jsonl(conversations: Iterable[Conversation]) -> Iterator[str]:
    for conversation in conversations:
        yield from _conversation_jsonl(conversation)


# --- Entry points ----------------------------------------------------------------------

_EXPORTERS = {
    "json": export_json,
    "md": export_markdown,
    "jsonl": export_jsonl,
    "openwebui": export_openwebui,
}


def blocks(pieces: Iterable[str], size: int = BLOCK_SIZE) -> Generator[bytes, None, None]:
    """Join small pieces into blocks of about `size` characters, encoded."""
    buffer: list[str] = []
    length = 0
    for piece in pieces:
        buffer.append(piece)
        length += len(piece)
        if length >= size:
            yield "".join(buffer).encode()
            buffer, length = [], 0
    if buffer:
        yield "".join(buffer).encode()


def export_conversations(
    conversations: Iterable[Conversation], export_format: str
) -> Generator[bytes, None, None]:
    """The export of `conversations` in one of EXPORT_FORMATS, as encoded blocks."""
    return blocks(_EXPORTERS[export_format](conversations))


def export_lines(conversation: Conversation) -> Generator[bytes, None, None]:
    """One conversation's lossless JSON export, one message per line."""
    return export_conversations([conversation], "json")


def export_user_history(user, export_format: str) -> Generator[bytes, None, None]:
    """Every conversation of `user`, streamed."""
    conversations = selectors.conversations_for_export(user).iterator(chunk_size=CHUNK_SIZE)
    return export_conversations(conversations, export_format)


def export_filename(export_format: str, conversation: Conversation | None = None) -> str:
    stamp = timezone.now().strftime("%Y%m%d")
    name = f"conversation-{conversation.uuid}" if conversation else f"chatsite-export-{stamp}"
    return f"{name}.{EXTENSIONS[export_format]}"
