"""Reading ChatGPT's `conversations.json` into a plan: the branch the user last saw, from
the root to `current_node`, as a linear thread of user and assistant messages, with the
reasoning ("thoughts") folded into the reply that follows it and other kinds of content skipped."""

from datetime import datetime

from conversations.models import MessageStatus, Role
from conversations.services.imports.plans import (
    ConversationPlan,
    MessageFields,
    MessagePlan,
    ModelLookup,
)

# Where ChatGPT's model slugs (gpt-4o, o3, ...) are looked up in the catalogue.
CHATGPT_PROVIDER = "openai"

# ChatGPT's finish_details.type to our status and finish reason.
_CHATGPT_FINISH: dict[str | None, tuple[str, str]] = {
    "stop": (MessageStatus.COMPLETE, "stop"),
    "max_tokens": (MessageStatus.TRUNCATED, "length"),
    "interrupted": (MessageStatus.CANCELLED, "cancelled"),
}
# Content that is conversation text; code, tool output, browsing and so on are skipped.
_CHATGPT_TEXT_TYPES = {"text", "multimodal_text"}


def plan_chatgpt(raw, models: ModelLookup) -> ConversationPlan:
    conversation = MessageFields(raw, "the conversation")
    created_at = conversation.epoch("create_time")
    default_slug = conversation.text("default_model_slug", limit=120)
    plan = ConversationPlan(
        fields={
            "title": conversation.text("title", limit=200),
            "chat_model": models.get(CHATGPT_PROVIDER, default_slug),
            "system_prompt": "",
        },
        created_at=created_at,
        updated_at=conversation.epoch("update_time"),
    )
    reasoning: list[str] = []
    for node_id, node in _chatgpt_thread(conversation):
        if node.get("message") is None:
            continue  # the root, or a node whose message was removed
        message = MessageFields(node["message"], f"message {node_id[:40]}")
        _chatgpt_add(plan, message, reasoning, models, default=created_at)
    if not plan.messages:
        conversation.fail("has no user or assistant messages to import")
    return plan


def _chatgpt_thread(conversation: MessageFields) -> list[tuple[str, dict]]:
    """The nodes from the root to `current_node` (the branch the user last saw)."""
    mapping = conversation.mapping("mapping")
    if not mapping:
        conversation.fail("has an empty mapping")
    current = conversation.text("current_node")
    if not current:
        # Older exports lack current_node: take the last leaf.
        leaves = [key for key, node in mapping.items() if isinstance(node, dict)]
        leaves = [key for key in leaves if not mapping[key].get("children")]
        current = leaves[-1] if leaves else ""
    path: list[tuple[str, dict]] = []
    seen: set[str] = set()
    node_id: str | None = current
    while node_id is not None:
        node = mapping.get(node_id) if isinstance(node_id, str) else None
        if not isinstance(node, dict) or node_id in seen:
            conversation.fail(f"has a broken mapping at node {str(node_id)[:40]!r}")
        seen.add(node_id)
        path.append((node_id, node))
        node_id = node.get("parent")
    path.reverse()
    return path


def _chatgpt_add(
    plan: ConversationPlan,
    message: MessageFields,
    reasoning: list[str],
    models: ModelLookup,
    *,
    default: datetime | None,
) -> None:
    role = MessageFields(message.mapping("author"), f"{message.where} author").text("role")
    content = MessageFields(message.mapping("content"), f"{message.where} content")
    content_type = content.text("content_type") or "text"
    metadata = message.mapping("metadata")
    if content_type == "thoughts":
        reasoning.extend(_chatgpt_thoughts(content))
        return
    if content_type not in _CHATGPT_TEXT_TYPES or metadata.get(
        "is_visually_hidden_from_conversation"
    ):
        return
    text = _chatgpt_parts(content)
    if role == Role.SYSTEM:
        plan.fields["system_prompt"] = plan.fields["system_prompt"] or text.strip()
        return
    if role not in (Role.USER, Role.ASSISTANT) or not text.strip():
        return
    fields = {"role": role, "content": text, "status": MessageStatus.COMPLETE}
    if role == Role.ASSISTANT:
        fields.update(_chatgpt_reply_fields(metadata, models))
        fields["reasoning"] = "\n\n".join(reasoning)
        reasoning.clear()
    parent = plan.messages[-1].key if plan.messages else None
    created_at = message.epoch("create_time") or default
    plan.messages.append(
        MessagePlan(
            key=str(len(plan.messages)),
            parent=parent,
            fields=fields,
            created_at=created_at,
            where=message.where,
        )
    )


def _chatgpt_parts(content: MessageFields) -> str:
    """The text parts joined; images and other attachments become a short placeholder."""
    pieces = []
    for part in content.items("parts"):
        if isinstance(part, str):
            pieces.append(part.replace("\x00", ""))
        elif isinstance(part, dict):
            pieces.append("[attachment]")
    return "\n\n".join(piece for piece in pieces if piece)


def _chatgpt_thoughts(content: MessageFields) -> list[str]:
    thoughts = []
    for thought in content.items("thoughts"):
        if isinstance(thought, dict) and isinstance(thought.get("content"), str):
            thoughts.append(thought["content"].replace("\x00", ""))
    return thoughts


def _chatgpt_reply_fields(metadata: dict, models: ModelLookup) -> dict:
    slug = metadata.get("model_slug")
    slug = slug[:120] if isinstance(slug, str) else ""
    finish = metadata.get("finish_details")
    finish_type = finish.get("type") if isinstance(finish, dict) else None
    status, reason = _CHATGPT_FINISH.get(finish_type, (MessageStatus.COMPLETE, ""))
    return {
        "model_name": slug,
        "chat_model": models.get(CHATGPT_PROVIDER, slug),
        "status": status,
        "finish_reason": reason,
    }
