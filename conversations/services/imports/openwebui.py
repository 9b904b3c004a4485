"""Reading Open WebUI's chat export into a plan: one chat object (`history.messages`, a
tree whose nodes name `parentId` and list `childrenIds`, with `currentId` the message on
screen), the envelope its "Export all chats" wraps each in (`{"id", "title", "chat": {...},
"created_at", ...}`), or a list of either.

Every branch is kept. A reply's reasoning comes from its `output` items where the export has
them, else from the `<details type="reasoning">` block Open WebUI writes into the text;
tool calls are skipped and counted either way. The flat `messages` list beside the tree is a
copy of one branch and is not read.
"""

import html
import re

from django.utils.translation import gettext

from conversations.models import MessageStatus, Role
from conversations.services.imports.plans import (
    MAX_COUNT,
    ConversationPlan,
    ConversationSkipped,
    MessageFields,
    MessagePlan,
    ModelLookup,
)
from conversations.services.imports.trees import Node, tree_order

_DETAILS = re.compile(r'<details type="(\w+)"[^>]*>(.*?)</details>\s*', re.DOTALL)
_SUMMARY = re.compile(r"<summary>.*?</summary>", re.DOTALL)
# Open WebUI's chat-level `timestamp` is in milliseconds, its message timestamps in seconds.
_MILLISECONDS_FROM = 10**11


def looks_like_openwebui(item) -> bool:
    if not isinstance(item, dict):
        return False
    chat = item["chat"] if isinstance(item.get("chat"), dict) else item
    return isinstance(chat.get("history"), dict)


def plan_openwebui(raw, models: ModelLookup) -> ConversationPlan:
    envelope = MessageFields(raw, "the conversation")
    chat = MessageFields(envelope.mapping("chat") or raw, "the conversation")
    history = MessageFields(chat.mapping("history"), "the conversation history")
    tree = history.mapping("messages")
    if not tree:
        raise ConversationSkipped(gettext("It has no messages to import."))
    plan = ConversationPlan(
        fields={
            "title": envelope.text("title", limit=200) or chat.text("title", limit=200),
            "system_prompt": "",
            "archived": raw.get("archived") is True,
        },
        created_at=_epoch(envelope, "created_at") or _epoch(chat, "timestamp"),
        updated_at=_epoch(envelope, "updated_at"),
    )
    nodes = {key: _node(key, node) for key, node in tree.items()}
    kept: dict[str, str | None] = {}
    for key in tree_order(nodes, history.fail):
        parent = nodes[key].parent
        above = kept.get(parent) if parent else None
        kept[key] = _read(plan, MessageFields(tree[key], f"message {key[:40]}"), key, above)
    if not plan.messages:
        raise ConversationSkipped(gettext("It has no messages to import."))
    # An export of one chat may have an empty id: its first message's id names it instead.
    plan.source_id = envelope.text("id") or chat.text("id") or f"message:{plan.messages[0].key}"
    current = history.text("currentId")
    plan.current = kept.get(current) if current else None
    return plan


def _node(key: str, raw) -> Node:
    node = MessageFields(raw, f"message {key[:40]}")
    children = node.items("childrenIds")
    if not all(isinstance(child, str) for child in children):
        node.fail("childrenIds must be a list of message ids")
    return Node(parent=node.text("parentId") or None, children=children)


def _read(plan: ConversationPlan, message: MessageFields, key: str, above: str | None):
    """Plan one node; the key its children hang from (its own, or above's if skipped)."""
    role = message.text("role")
    text, reasoning = _text_and_reasoning(plan, message)
    if role == Role.SYSTEM:
        plan.fields["system_prompt"] = plan.fields["system_prompt"] or text.strip()
        plan.skip("system")
        return above
    if role not in (Role.USER, Role.ASSISTANT):
        plan.skip("other_content")
        return above
    if not text.strip() and not reasoning:
        plan.skip("placeholder")
        return above
    created_at = _epoch(message, "timestamp") or plan.created_at
    fields: dict = {"role": role, "content": text, "status": MessageStatus.COMPLETE}
    if role == Role.ASSISTANT:
        fields.update(_reply_fields(message), reasoning=reasoning, completed_at=created_at)
    plan.messages.append(
        MessagePlan(
            key=key, parent=above, fields=fields, created_at=created_at, where=message.where
        )
    )
    return key


def _text_and_reasoning(plan: ConversationPlan, message: MessageFields) -> tuple[str, str]:
    outputs = message.items("output")
    if outputs:
        return _from_outputs(plan, message, outputs)
    reasoning = []

    def fold(match: re.Match) -> str:
        if match.group(1) == "reasoning":
            inner = html.unescape(_SUMMARY.sub("", match.group(2))).strip()
            reasoning.append("\n".join(line.removeprefix("> ") for line in inner.splitlines()))
        else:
            plan.skip("tool")
        return ""

    text = _DETAILS.sub(fold, message.text("content"))
    return text, "\n\n".join(reasoning)


def _from_outputs(plan: ConversationPlan, message: MessageFields, outputs: list):
    texts, thoughts = [], []
    for position, raw in enumerate(outputs, start=1):
        item = MessageFields(raw, f"{message.where} output {position}")
        kind = item.text("type")
        pieces = [
            part["text"]
            for part in item.items("content")
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        ]
        if kind == "message":
            texts.extend(pieces)
        elif kind == "reasoning":
            thoughts.extend(pieces)
        else:
            plan.skip("tool")
    return "\n\n".join(texts).replace("\x00", ""), "\n\n".join(thoughts).replace("\x00", "")


def _reply_fields(message: MessageFields) -> dict:
    usage = message.mapping("usage")
    fields: dict = {"model_name": message.text("model", limit=120)}
    for ours, theirs in (
        ("prompt_tokens", ("prompt_tokens", "prompt_eval_count")),
        ("completion_tokens", ("completion_tokens", "eval_count")),
    ):
        value = next((usage[name] for name in theirs if name in usage), None)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT:
            fields[ours] = value
    error = message.data.get("error")
    if error:
        detail = error.get("content") if isinstance(error, dict) else error
        fields.update(status=MessageStatus.FAILED, error_text=str(detail)[:2000])
    elif message.data.get("done") is False:
        fields["status"] = MessageStatus.INTERRUPTED  # exported mid-stream
    return fields


def _epoch(fields: MessageFields, name: str):
    return fields.epoch(name, milliseconds_from=_MILLISECONDS_FROM)
