"""Import: chatsite's own JSON export and ChatGPT's `conversations.json`.

Each conversation is read and validated in full before anything is written, then written in
its own transaction: a broken conversation writes nothing and is reported by position and
title, and the others in the file still import. A file that is not JSON, or not one of the
two shapes, is refused as a whole with a sentence saying why.

Imported conversations and messages get new uuids (importing your own export beside the
original must not collide); everything else the format carries is kept, timestamps included.
"""

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from django.contrib.auth.models import AbstractBaseUser
from django.db import DatabaseError, transaction
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy

from conversations import selectors, transfer
from conversations.errors import ValidationFailed
from conversations.models import (
    IN_FLIGHT,
    ChatModel,
    Conversation,
    ConversationSummary,
    Message,
    MessageStatus,
    Role,
)

# Rows per INSERT / UPDATE statement when writing a long conversation.
WRITE_BATCH = 500
# PositiveIntegerField's ceiling in PostgreSQL.
MAX_COUNT = 2**31 - 1
# Where ChatGPT's model slugs (gpt-4o, o3, ...) are looked up in the catalogue.
CHATGPT_PROVIDER = "openai"


class ImportRejected(ValidationFailed):
    """The file as a whole cannot be read; nothing was imported."""

    code = "import_rejected"
    default_message = gettext_lazy("That file cannot be imported.")


@dataclass(frozen=True)
class ImportFailure:
    index: int  # 0-based position of the conversation in the file
    title: str
    error: str


@dataclass
class ImportResult:
    conversations: list[Conversation] = field(default_factory=list)
    failures: list[ImportFailure] = field(default_factory=list)


@dataclass
class _MessagePlan:
    key: str  # the message's id in the file, only used to link parents
    parent: str | None
    fields: dict
    created_at: datetime | None


@dataclass
class _SummaryPlan:
    covers_through: str
    previous: str | None
    fields: dict
    created_at: datetime | None


@dataclass
class _ConversationPlan:
    fields: dict
    created_at: datetime | None = None
    updated_at: datetime | None = None
    messages: list[_MessagePlan] = field(default_factory=list)
    summaries: list[_SummaryPlan] = field(default_factory=list)


# --- Entry point -----------------------------------------------------------------------


def conversations_import(*, owner: AbstractBaseUser, data: bytes | str) -> ImportResult:
    """Import every conversation in `data`; ImportRejected if the file is unreadable."""
    items, planner = _conversations_in(_parse(data))
    models = _ModelLookup()
    result = ImportResult()
    for index, raw in enumerate(items):
        try:
            plan = planner(raw, models)
            result.conversations.append(_write(owner, plan))
        except ValidationFailed as exc:
            result.failures.append(ImportFailure(index, _title_of(raw), exc.message))
        except DatabaseError as exc:
            detail = str(exc).splitlines()[0] if str(exc) else exc
            error = gettext("It could not be saved: %(detail)s") % {"detail": detail}
            result.failures.append(ImportFailure(index, _title_of(raw), error))
    return result


def _parse(data: bytes | str):
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ImportRejected(
                gettext("The file is not UTF-8 text; exports are UTF-8 JSON.")
            ) from None
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise ImportRejected(
            gettext("The file is not valid JSON (%(error)s at line %(line)s, column %(column)s).")
            % {"error": exc.msg, "line": exc.lineno, "column": exc.colno}
        ) from None
    except RecursionError:
        raise ImportRejected(gettext("The file is nested too deeply to be an export.")) from None


def _conversations_in(document) -> tuple[list, Callable]:
    """The raw conversations of the file and the planner that reads their format."""
    if isinstance(document, dict) and "format" in document:
        return _chatsite_conversations(document), _plan_chatsite
    if isinstance(document, dict) and "mapping" in document:
        return [document], _plan_chatgpt
    if isinstance(document, list) and document and _is_chatgpt(document[0]):
        return document, _plan_chatgpt
    if isinstance(document, list) and not document:
        raise ImportRejected(gettext("The file holds no conversations."))
    raise ImportRejected(
        gettext("This is not a chatsite export (JSON) or a ChatGPT conversations.json file.")
    )


def _is_chatgpt(item) -> bool:
    return isinstance(item, dict) and "mapping" in item


def _chatsite_conversations(document: dict) -> list:
    if document.get("format") != transfer.FORMAT:
        raise ImportRejected(
            gettext("Unknown export format %(format)s.")
            % {"format": repr(str(document.get("format"))[:40])}
        )
    version = document.get("version")
    if version != transfer.VERSION:
        raise ImportRejected(
            gettext("This export is version %(version)s; this server reads version %(ours)s.")
            % {"version": str(version)[:20], "ours": transfer.VERSION}
        )
    conversations = document.get("conversations")
    if not isinstance(conversations, list):
        raise ImportRejected(gettext('The export has no "conversations" list.'))
    if not conversations:
        raise ImportRejected(gettext("The file holds no conversations."))
    return conversations


def _title_of(raw) -> str:
    title = raw.get("title") if isinstance(raw, dict) else None
    return title[:200] if isinstance(title, str) else ""


# --- Reading fields with clear errors --------------------------------------------------


class _Fields:
    """Typed reads from one JSON object; a wrong value raises ValidationFailed naming it."""

    def __init__(self, data, where: str) -> None:
        self.where = where
        if not isinstance(data, dict):
            self.fail("must be a JSON object")
        self.data = data

    def fail(self, problem: str):
        sentence = f"{self.where} {problem}.".strip()
        raise ValidationFailed(sentence[:1].upper() + sentence[1:])

    def text(self, name: str, *, limit: int | None = None) -> str:
        value = self.data.get(name)
        if value is None:
            return ""
        if not isinstance(value, str):
            self.fail(f"{name} must be text")
        # PostgreSQL text cannot hold NUL.
        value = value.replace("\x00", "")
        return value[:limit] if limit else value

    def count(self, name: str) -> int | None:
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
            self.fail(f"{name} must be a whole number from 0 to {MAX_COUNT}")
        return value

    def number(self, name: str) -> float | None:
        value = self.data.get(name)
        if value is None:
            return None
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            self.fail(f"{name} must be a number")
        return float(value)

    def flag(self, name: str) -> bool:
        value = self.data.get(name, False)
        if not isinstance(value, bool):
            self.fail(f"{name} must be true or false")
        return value

    def choice(self, name: str, choices: list[str], default: str | None = None) -> str:
        value = self.data.get(name, default)
        if value not in choices:
            self.fail(f"{name} must be one of {', '.join(choices)}")
        return value

    def mapping(self, name: str) -> dict:
        value = self.data.get(name)
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(f"{name} must be an object")
        return value

    def items(self, name: str) -> list:
        value = self.data.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(f"{name} must be a list")
        return value

    def time(self, name: str) -> datetime | None:
        value = self.data.get(name)
        if value is None:
            return None
        try:
            moment = datetime.fromisoformat(value)
        except (TypeError, ValueError):
            self.fail(f"{name} must be an ISO 8601 date and time")
        return moment if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)

    def epoch(self, name: str) -> datetime | None:
        """ChatGPT's timestamps: seconds since 1970 as a number."""
        seconds = self.number(name)
        if seconds is None:
            return None
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            self.fail(f"{name} is not a valid timestamp")


class _ModelLookup:
    """Catalogue rows by provider slug and model name, each looked up once per import."""

    def __init__(self) -> None:
        self._found: dict[tuple[str, str], ChatModel | None] = {}

    def get(self, provider: str, name: str) -> ChatModel | None:
        key = (provider, name)
        if key not in self._found:
            self._found[key] = selectors.chat_model_by_name(provider, name)
        return self._found[key]

    def named(self, reference: dict, where: str) -> ChatModel | None:
        fields = _Fields(reference, f"{where} model")
        return self.get(fields.text("provider"), fields.text("name"))


# --- chatsite's own format -------------------------------------------------------------


def _plan_chatsite(raw, models: _ModelLookup) -> _ConversationPlan:
    conversation = _Fields(raw, "the conversation")
    parameters = _Fields(conversation.mapping("parameters"), "parameters")
    stop = parameters.items("stop")
    if not all(isinstance(item, str) for item in stop):
        parameters.fail("stop must be a list of texts")
    plan = _ConversationPlan(
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
    )
    keys: set[str] = set()
    for position, raw_message in enumerate(conversation.items("messages"), start=1):
        message = _chatsite_message(_Fields(raw_message, f"message {position}"), keys, models)
        keys.add(message.key)
        plan.messages.append(message)
    covered: set[str] = set()
    for position, raw_summary in enumerate(conversation.items("summaries"), start=1):
        summary = _chatsite_summary(_Fields(raw_summary, f"summary {position}"), keys, covered)
        covered.add(summary.covers_through)
        plan.summaries.append(summary)
    return plan


def _chatsite_message(message: _Fields, keys: set[str], models: _ModelLookup) -> _MessagePlan:
    key = message.text("id")
    if not key or key in keys:
        message.fail("needs an id of its own")
    parent = message.text("parent") or None
    if parent is not None and parent not in keys:
        message.fail(f"names parent {parent[:40]!r}, which does not come before it")
    status = message.choice("status", MessageStatus.values, MessageStatus.COMPLETE)
    # Nobody is generating an imported reply: one that was in flight is kept as interrupted.
    if status in IN_FLIGHT:
        status = MessageStatus.INTERRUPTED
    usage = _Fields(message.mapping("usage"), f"{message.where} usage")
    chat_model = models.named(message.mapping("model"), message.where)
    return _MessagePlan(
        key=key,
        parent=parent,
        created_at=message.time("created_at"),
        fields={
            "role": message.choice("role", Role.values),
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
            **{name: usage.count(name) for name in transfer.USAGE_FIELDS},
        },
    )


def _chatsite_summary(summary: _Fields, keys: set[str], covered: set[str]) -> _SummaryPlan:
    covers_through = summary.text("covers_through")
    if covers_through not in keys or covers_through in covered:
        summary.fail("must cover through a message of the conversation, once")
    previous = summary.text("previous") or None
    if previous is not None and previous not in covered:
        summary.fail("names a previous summary that does not come before it")
    return _SummaryPlan(
        covers_through=covers_through,
        previous=previous,
        created_at=summary.time("created_at"),
        fields={
            "text": summary.text("text"),
            "token_count": summary.count("token_count") or 0,
            "model_name": summary.text("model_name", limit=120),
        },
    )


# --- ChatGPT's conversations.json ------------------------------------------------------

# ChatGPT's finish_details.type to our status and finish reason.
_CHATGPT_FINISH = {
    "stop": (MessageStatus.COMPLETE, "stop"),
    "max_tokens": (MessageStatus.TRUNCATED, "length"),
    "interrupted": (MessageStatus.CANCELLED, "cancelled"),
}
# Content that is conversation text; code, tool output, browsing and so on are skipped.
_CHATGPT_TEXT_TYPES = {"text", "multimodal_text"}


def _plan_chatgpt(raw, models: _ModelLookup) -> _ConversationPlan:
    conversation = _Fields(raw, "the conversation")
    created_at = conversation.epoch("create_time")
    default_slug = conversation.text("default_model_slug", limit=120)
    plan = _ConversationPlan(
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
        message = _Fields(node["message"], f"message {node_id[:40]}")
        _chatgpt_add(plan, message, reasoning, models, default=created_at)
    if not plan.messages:
        conversation.fail("has no user or assistant messages to import")
    return plan


def _chatgpt_thread(conversation: _Fields) -> list[tuple[str, dict]]:
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
    plan: _ConversationPlan,
    message: _Fields,
    reasoning: list[str],
    models: _ModelLookup,
    *,
    default: datetime | None,
) -> None:
    role = _Fields(message.mapping("author"), f"{message.where} author").text("role")
    content = _Fields(message.mapping("content"), f"{message.where} content")
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
        _MessagePlan(
            key=str(len(plan.messages)), parent=parent, fields=fields, created_at=created_at
        )
    )


def _chatgpt_parts(content: _Fields) -> str:
    """The text parts joined; images and other attachments become a short placeholder."""
    pieces = []
    for part in content.items("parts"):
        if isinstance(part, str):
            pieces.append(part.replace("\x00", ""))
        elif isinstance(part, dict):
            pieces.append("[attachment]")
    return "\n\n".join(piece for piece in pieces if piece)


def _chatgpt_thoughts(content: _Fields) -> list[str]:
    thoughts = []
    for thought in content.items("thoughts"):
        if isinstance(thought, dict) and isinstance(thought.get("content"), str):
            thoughts.append(thought["content"].replace("\x00", ""))
    return thoughts


def _chatgpt_reply_fields(metadata: dict, models: _ModelLookup) -> dict:
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


# --- Writing ---------------------------------------------------------------------------


@transaction.atomic
def _write(owner: AbstractBaseUser, plan: _ConversationPlan) -> Conversation:
    """One conversation and all its rows, or nothing (the caller reports the failure)."""
    conversation = Conversation.objects.create(owner=owner, **plan.fields)
    by_key = _write_messages(conversation, plan.messages)
    _write_summaries(conversation, plan.summaries, by_key)
    newest = max((m.created_at for m in plan.messages if m.created_at), default=None)
    # created_at/updated_at are auto fields: set them after the fact, by a plain UPDATE.
    Conversation.objects.filter(pk=conversation.pk).update(
        created_at=plan.created_at or conversation.created_at,
        updated_at=plan.updated_at or newest or conversation.updated_at,
    )
    conversation.refresh_from_db()
    return conversation


def _write_messages(conversation: Conversation, plans: list[_MessagePlan]) -> dict[str, Message]:
    messages = [Message(conversation=conversation, **plan.fields) for plan in plans]
    # Inserted in file order, so ids keep parents before children and the newest message
    # (the end of the thread on screen) stays the newest.
    Message.objects.bulk_create(messages, batch_size=WRITE_BATCH)
    by_key = {plan.key: message for plan, message in zip(plans, messages, strict=True)}
    for plan, message in zip(plans, messages, strict=True):
        message.parent = by_key[plan.parent] if plan.parent else None
        message.created_at = plan.created_at or message.created_at
    Message.objects.bulk_update(messages, ["parent", "created_at"], batch_size=WRITE_BATCH)
    return by_key


def _write_summaries(
    conversation: Conversation, plans: list[_SummaryPlan], by_key: dict[str, Message]
) -> None:
    by_message: dict[str, ConversationSummary] = {}
    for plan in plans:
        summary = ConversationSummary.objects.create(
            conversation=conversation,
            covers_through=by_key[plan.covers_through],
            previous=by_message[plan.previous] if plan.previous else None,
            **plan.fields,
        )
        if plan.created_at:
            ConversationSummary.objects.filter(pk=summary.pk).update(created_at=plan.created_at)
        by_message[plan.covers_through] = summary
