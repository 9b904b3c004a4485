"""Reading ChatGPT's `conversations.json` into a plan: the whole `mapping` tree, every
branch (each regenerated answer and edited question a version of its turn), with
`current_node`'s branch the one on screen.

Nodes become messages as ChatGPT shows them: the root placeholder, hidden nodes (the
system message, custom instructions, memory context), tool calls and their output, content
other than text and empty nodes are skipped and counted, and a skipped node's children hang
from its nearest kept ancestor. Reasoning ("thoughts") is folded into the reply that
follows it on the same branch. Images are not in `conversations.json`: each becomes a
placeholder in the text and is counted as missing.
"""

from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property

from django.utils.translation import gettext

from conversations.models import MessageStatus, Role
from conversations.services.imports.assets import IMAGE_NOT_INCLUDED, asset_id
from conversations.services.imports.plans import (
    ConversationPlan,
    ConversationSkipped,
    MessageFields,
    MessagePlan,
    ModelLookup,
)
from conversations.services.imports.trees import Node, tree_order

# Where ChatGPT's model slugs (gpt-4o, o3, ...) are looked up in the catalogue.
CHATGPT_PROVIDER = "openai"

# ChatGPT's finish_details.type to our status and finish reason.
_FINISH: dict[str | None, tuple[str, str]] = {
    "stop": (MessageStatus.COMPLETE, "stop"),
    "max_tokens": (MessageStatus.TRUNCATED, "length"),
    "interrupted": (MessageStatus.CANCELLED, "cancelled"),
}
_ROLES = frozenset(Role.values)
# Content that is conversation text.
_TEXT_TYPES = {"text", "multimodal_text"}
# Content ChatGPT never shows in the conversation, whatever its metadata says.
_HIDDEN_TYPES = {"user_editable_context", "model_editable_context", "reasoning_recap"}
# In the text where the export refers to something it does not carry.
FILE_NOT_INCLUDED = "[file not included in the export]"


def looks_like_chatgpt(item) -> bool:
    """One entry of a ChatGPT `conversations.json` (a corrupted one has no mapping)."""
    return isinstance(item, dict) and ("mapping" in item or "current_node" in item)


def plan_chatgpt(raw, models: ModelLookup) -> ConversationPlan:
    conversation = MessageFields(raw, "the conversation")
    if raw.get("mapping") is None:
        raise ConversationSkipped(
            gettext("It has no messages: ChatGPT lists it without a mapping.")
        )
    mapping = conversation.mapping("mapping")
    default_slug = conversation.text("default_model_slug", limit=120)
    plan = ConversationPlan(
        fields={
            "title": conversation.text("title", limit=200),
            "chat_model": models.get(CHATGPT_PROVIDER, default_slug),
            "system_prompt": "",
            "archived": raw.get("is_archived") is True,
        },
        created_at=conversation.epoch("create_time"),
        updated_at=conversation.epoch("update_time"),
        source_id=conversation.text("conversation_id") or conversation.text("id"),
    )
    nodes = {node_id: _node(node_id, node) for node_id, node in mapping.items()}
    reader = _TreeReader(plan, models, default_slug)
    for node_id in tree_order(nodes, conversation.fail):
        reader.read(node_id, mapping[node_id].get("message"), nodes[node_id].parent)
    if not plan.messages:
        raise ConversationSkipped(gettext("It has no messages to import."))
    current = conversation.text("current_node")
    plan.current = reader.kept.get(current) if current else None
    return plan


def _node(node_id: str, raw) -> Node:
    node = MessageFields(raw, f"node {node_id[:60]!r}")
    children = node.items("children")
    if not all(isinstance(child, str) for child in children):
        node.fail("children must be a list of node ids")
    return Node(parent=node.text("parent") or None, children=children)


@dataclass
class _TreeReader:
    """Reads nodes parents first, remembering for each node the message its children hang
    from and the reasoning still waiting for a reply on its branch."""

    plan: ConversationPlan
    models: ModelLookup
    default_slug: str
    kept: dict[str, str | None] = field(default_factory=dict)
    pending: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def read(self, node_id: str, raw_message, parent: str | None) -> None:
        above = self.kept.get(parent) if parent else None
        waiting = self.pending.get(parent, ()) if parent else ()
        self.kept[node_id], self.pending[node_id] = above, waiting
        if raw_message is None:
            self.plan.skip("placeholder")
            return
        message = MessageFields(raw_message, f"message {node_id[:40]}")
        content = MessageFields(message.mapping("content"), f"{message.where} content")
        content_type = content.text("content_type") or "text"
        if content_type == "thoughts":
            self.pending[node_id] = waiting + tuple(_thoughts(content))
            return
        node = _Read(message, content, content_type, _role(message))
        reason = self._skip_reason(node)
        if reason:
            self.plan.skip(reason)
            return
        self.plan.messages.append(self._message(node_id, node, above, waiting))
        self.kept[node_id], self.pending[node_id] = node_id, ()

    def _skip_reason(self, node: "_Read") -> str:
        message, role, content_type = node.message, node.role, node.content_type
        if content_type in _HIDDEN_TYPES or message.mapping("metadata").get(
            "is_visually_hidden_from_conversation"
        ):
            return "hidden"
        if role == "tool" or message.data.get("recipient") not in (None, "all"):
            return "tool"
        if content_type not in _TEXT_TYPES or role not in _ROLES:
            return "other_content"
        text = node.parts[0]
        if role == Role.SYSTEM:
            fields = self.plan.fields
            fields["system_prompt"] = fields["system_prompt"] or text.strip()
            return "system"
        return "" if text.strip() else "placeholder"

    def _message(
        self, node_id: str, node: "_Read", above: str | None, reasoning: tuple[str, ...]
    ) -> MessagePlan:
        message, role = node.message, node.role
        text, missing, assets = node.parts
        self.plan.missing_files += missing
        created_at = message.epoch("create_time") or self.plan.created_at
        fields = {"role": role, "content": text, "status": MessageStatus.COMPLETE}
        if role == Role.ASSISTANT:
            fields.update(self._reply_fields(message, created_at))
            fields["reasoning"] = "\n\n".join(reasoning)
        return MessagePlan(
            key=node_id,
            parent=above,
            fields=fields,
            created_at=created_at,
            where=message.where,
            asset_ids=assets,
        )

    def _reply_fields(self, message: MessageFields, created_at: datetime | None) -> dict:
        metadata = message.mapping("metadata")
        slug = metadata.get("model_slug")
        slug = slug[:120] if isinstance(slug, str) and slug else self.default_slug
        finish = metadata.get("finish_details")
        finish_type = finish.get("type") if isinstance(finish, dict) else None
        status, reason = _FINISH.get(finish_type, (MessageStatus.COMPLETE, ""))
        if message.data.get("status") == "in_progress":
            # The export caught the answer mid-stream: nobody will finish it.
            status, reason = MessageStatus.INTERRUPTED, ""
        return {
            "model_name": slug,
            "chat_model": self.models.get(CHATGPT_PROVIDER, slug),
            "status": status,
            "finish_reason": reason,
            "completed_at": message.epoch("update_time") or created_at,
        }


@dataclass
class _Read:
    """One node's message as read once: what the skip rules and the plan both look at."""

    message: MessageFields
    content: MessageFields
    content_type: str
    role: str

    @cached_property
    def parts(self) -> tuple[str, int, list[str]]:
        return _parts(self.content)


def _role(message: MessageFields) -> str:
    return MessageFields(message.mapping("author"), f"{message.where} author").text("role")


def _parts(content: MessageFields) -> tuple[str, int, list[str]]:
    """The text parts joined, how many images or files the parts only refer to (each
    becomes a placeholder in the text), and the ids of the ZIP's files they point at."""
    pieces, missing, assets = [], 0, []
    for part in content.items("parts"):
        if isinstance(part, str):
            pieces.append(part.replace("\x00", ""))
        elif isinstance(part, dict):
            missing += 1
            is_image = str(part.get("content_type", "")).startswith("image")
            pieces.append(IMAGE_NOT_INCLUDED if is_image else FILE_NOT_INCLUDED)
            if is_image and (found := asset_id(part.get("asset_pointer"))):
                assets.append(found)
    return "\n\n".join(piece for piece in pieces if piece), missing, assets


def _thoughts(content: MessageFields) -> list[str]:
    thoughts = []
    for thought in content.items("thoughts"):
        if isinstance(thought, dict) and isinstance(thought.get("content"), str):
            thoughts.append(thought["content"].replace("\x00", ""))
    return thoughts
