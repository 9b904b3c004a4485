"""Reading Claude's `conversations.json` (a list of conversations with `chat_messages`)
into a plan. A message's `content` blocks are read in order: `text` blocks are its text,
`thinking` blocks the reply's reasoning (shown collapsed like any reasoning), tool use and
tool results are skipped and counted. Messages name their parent
(`parent_message_uuid`) in newer exports, so edits and retries are kept as versions of a
turn; older exports are a single thread in list order. Attachments are kept when the export
carries their text (`extracted_content`); files it does not carry are counted as missing.
"""

from django.utils.translation import gettext

from conversations.models import MessageStatus, Role
from conversations.services.imports.plans import (
    ConversationPlan,
    ConversationSkipped,
    MessageFields,
    MessagePlan,
    ModelLookup,
)

_ROLES = {"human": Role.USER, "assistant": Role.ASSISTANT}
# Claude's parent of a conversation's first message: no message at all.
_ROOT = "00000000-0000-4000-8000-000000000000"
_TOOL_BLOCKS = {"tool_use", "tool_result", "server_tool_use", "web_search_tool_result"}
FILE_NOT_INCLUDED = "[file not included in the export: {name}]"


def looks_like_claude(item) -> bool:
    return isinstance(item, dict) and "chat_messages" in item


def plan_claude(raw, models: ModelLookup) -> ConversationPlan:
    conversation = MessageFields(raw, "the conversation")
    plan = ConversationPlan(
        fields={"title": conversation.text("name", limit=200), "system_prompt": ""},
        created_at=conversation.time("created_at"),
        updated_at=conversation.time("updated_at"),
        source_id=conversation.text("uuid"),
    )
    # Every message seen so far, and the kept message its children hang from (itself, or
    # for a skipped one its own parent).
    keys: dict[str, str | None] = {}
    for position, raw_message in enumerate(conversation.items("chat_messages"), start=1):
        message = MessageFields(raw_message, f"message {position}")
        planned = _message(plan, message, keys, position)
        if planned is not None:
            plan.messages.append(planned)
    if not plan.messages:
        raise ConversationSkipped(gettext("It has no messages to import."))
    return plan


def _message(
    plan: ConversationPlan, message: MessageFields, keys: dict[str, str | None], position: int
) -> MessagePlan | None:
    key = message.text("uuid") or str(position)
    message.where = f"message {key[:40]}"
    if key in keys:
        message.fail("appears twice")
    role = _ROLES.get(message.text("sender"))
    if role is None:
        message.fail("sender must be human or assistant")
    parent = _parent(plan, message, keys)
    text, reasoning = _blocks(plan, message)
    text = "\n\n".join(part for part in (text, _attachments(plan, message)) if part)
    keys[key] = key
    if not text.strip() and not reasoning:
        plan.skip("placeholder")
        keys[key] = parent
        return None
    fields: dict = {"role": role, "content": text, "status": MessageStatus.COMPLETE}
    if role == Role.ASSISTANT:
        fields.update(reasoning=reasoning, completed_at=message.time("updated_at"))
    return MessagePlan(
        key=key,
        parent=parent,
        fields=fields,
        created_at=message.time("created_at"),
        where=message.where,
    )


def _parent(
    plan: ConversationPlan, message: MessageFields, keys: dict[str, str | None]
) -> str | None:
    """The kept message this one hangs from: the one it names, else (older exports) the
    one before it."""
    if "parent_message_uuid" not in message.data:
        return plan.messages[-1].key if plan.messages else None
    parent = message.text("parent_message_uuid")
    if not parent or parent == _ROOT:
        return None
    if parent not in keys:
        message.fail(f"names parent {parent[:40]!r}, which does not come before it")
    return keys[parent]


def _blocks(plan: ConversationPlan, message: MessageFields) -> tuple[str, str]:
    """The message's text and reasoning from its content blocks; `text` when it has none."""
    texts, thoughts = [], []
    for position, raw_block in enumerate(message.items("content"), start=1):
        block = MessageFields(raw_block, f"{message.where} content block {position}")
        kind = block.text("type")
        if kind == "text":
            texts.append(block.text("text"))
        elif kind == "thinking":
            thoughts.append(block.text("thinking"))
        elif kind in _TOOL_BLOCKS:
            plan.skip("tool")
        else:
            plan.skip("other_content")
    if not message.items("content"):
        texts.append(message.text("text"))
    return "\n\n".join(t for t in texts if t), "\n\n".join(t for t in thoughts if t)


def _attachments(plan: ConversationPlan, message: MessageFields) -> str:
    """Attached files' text where the export carries it, a placeholder where it does not."""
    pieces = []
    for position, raw in enumerate(message.items("attachments"), start=1):
        attachment = MessageFields(raw, f"{message.where} attachment {position}")
        name = attachment.text("file_name", limit=200)
        extracted = attachment.text("extracted_content")
        if extracted:
            pieces.append(f"{name}:\n\n{extracted}" if name else extracted)
        else:
            plan.missing_files += 1
            pieces.append(FILE_NOT_INCLUDED.format(name=name or "?"))
    for position, raw in enumerate(message.items("files"), start=1):
        name = MessageFields(raw, f"{message.where} file {position}").text("file_name", limit=200)
        plan.missing_files += 1
        pieces.append(FILE_NOT_INCLUDED.format(name=name or "?"))
    return "\n\n".join(pieces)
