"""Reading chatsite's own JSON export (the format `conversations/exports.py` writes) into a
plan: the conversation's fields and parameters, every message of the tree with its parent,
the branch on screen, and the summaries, each checked against the messages before it."""

from django.conf import settings

from conversations import exports
from conversations.export_images import image_bytes
from conversations.images import image_size
from conversations.models import MessageStatus, Role
from conversations.services.imports.plans import (
    ConversationPlan,
    ImagePlan,
    MessageFields,
    MessagePlan,
    ModelLookup,
    SummaryImportPlan,
)

# Looked up once: an enum's `values` is a new list each time it is read.
_STATUSES, _ROLES = MessageStatus.values, Role.values


def plan_chatsite(raw, models: ModelLookup) -> ConversationPlan:
    conversation = MessageFields(raw, "the conversation")
    parameters = MessageFields(conversation.mapping("parameters"), "parameters")
    stop = parameters.items("stop")
    if not all(isinstance(item, str) for item in stop):
        parameters.fail("stop must be a list of texts")
    plan = ConversationPlan(
        fields={
            "title": conversation.text("title", limit=200),
            "title_from_user": conversation.flag("title_from_user"),
            "archived": conversation.flag("archived"),
            "chat_model": models.named(conversation.mapping("model"), "the conversation's"),
            "system_prompt": parameters.text("system_prompt"),
            "temperature": parameters.number("temperature"),
            "top_p": parameters.number("top_p"),
            "max_tokens": parameters.count("max_tokens"),
            "stop": stop,
            "thinking_enabled": parameters.flag("thinking_enabled"),
            "thinking_budget": parameters.count("thinking_budget"),
            "json_mode": parameters.flag("json_mode"),
        },
        created_at=conversation.time("created_at"),
        updated_at=conversation.time("updated_at"),
        source_id=conversation.text("id", limit=200),
    )
    keys: set[str] = set()
    for position, raw_message in enumerate(conversation.items("messages"), start=1):
        fields = MessageFields(raw_message, f"message {position}")
        message = _chatsite_message(fields, keys, models)
        message.images = _chatsite_images(plan, fields)
        keys.add(message.key)
        plan.messages.append(message)
    covered: set[str] = set()
    for position, raw_summary in enumerate(conversation.items("summaries"), start=1):
        summary = _chatsite_summary(
            MessageFields(raw_summary, f"summary {position}"), keys, covered
        )
        covered.add(summary.covers_through)
        plan.summaries.append(summary)
    plan.current = conversation.text("current_leaf") or None
    if plan.current is not None and plan.current not in keys:
        conversation.fail("current_leaf names no message of the conversation")
    return plan


def _chatsite_message(message: MessageFields, keys: set[str], models: ModelLookup) -> MessagePlan:
    key = message.text("id")
    if not key or key in keys:
        message.fail("needs an id of its own")
    parent = message.text("parent") or None
    if parent is not None and parent not in keys:
        message.fail(f"names parent {parent[:40]!r}, which does not come before it")
    status = message.choice("status", _STATUSES, MessageStatus.COMPLETE)
    # Nobody is generating an imported reply: one that was in flight is kept as interrupted.
    if status in MessageStatus.IN_FLIGHT:
        status = MessageStatus.INTERRUPTED
    usage = MessageFields(message.mapping("usage"), f"{message.where} usage")
    chat_model = models.named(message.mapping("model"), message.where)
    return MessagePlan(
        key=key,
        parent=parent,
        where=message.where,
        created_at=message.time("created_at"),
        fields={
            "role": message.choice("role", _ROLES),
            "content": message.text("content"),
            "reasoning": message.text("reasoning"),
            "status": status,
            "finish_reason": message.text("finish_reason", limit=40),
            "error_code": message.text("error_code", limit=40),
            "error_text": message.text("error_text"),
            "chat_model": chat_model,
            "model_name": message.text("model_name", limit=120),
            "context": message.mapping("context"),
            "completed_at": message.time("completed_at"),
            **{name: usage.count(name) for name in exports.USAGE_FIELDS},
        },
    )


def _chatsite_images(plan: ConversationPlan, message: MessageFields) -> list[ImagePlan]:
    """The message's images the export carries, as the upload would have taken them; one
    without its bytes (or past ATTACHMENT_MAX_BYTES) is counted as not included."""
    images = []
    for position, raw in enumerate(message.items("attachments"), start=1):
        image = MessageFields(raw, f"{message.where} attachment {position}")
        found = image_bytes(image.data.get("data"))
        if found.data is None or len(found.data) > settings.ATTACHMENT_MAX_BYTES:
            plan.missing_files += 1
            continue
        width, height = image_size(found.data) or (image.count("width"), image.count("height"))
        fields = {
            "content_type": found.content_type,
            "size": len(found.data),
            "name": image.text("name", limit=200),
            "width": width,
            "height": height,
        }
        images.append(ImagePlan(found.data, fields))
    return images


def _chatsite_summary(
    summary: MessageFields, keys: set[str], covered: set[str]
) -> SummaryImportPlan:
    covers_through = summary.text("covers_through")
    if covers_through not in keys or covers_through in covered:
        summary.fail("must cover through a message of the conversation, once")
    previous = summary.text("previous") or None
    if previous is not None and previous not in covered:
        summary.fail("names a previous summary that does not come before it")
    return SummaryImportPlan(
        covers_through=covers_through,
        previous=previous,
        where=summary.where,
        created_at=summary.time("created_at"),
        fields={
            "text": summary.text("text"),
            "token_count": summary.count("token_count") or 0,
            "model_name": summary.text("model_name", limit=120),
        },
    )
