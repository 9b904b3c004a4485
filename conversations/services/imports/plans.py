"""What a conversation in an import file is read into before anything is written (a plan of
its fields, messages and summaries), and the tools the format readers build plans with: typed
reads from a JSON object that fail with a sentence naming the bad field, and catalogue models
looked up once per import."""

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NoReturn

from django.utils import timezone
from django.utils.translation import gettext_lazy

from conversations.errors import ValidationFailed
from conversations.models import ChatModel
from conversations.providers import catalogue
from conversations.storable import unstorable_at

# PositiveIntegerField's ceiling in PostgreSQL.
MAX_COUNT = 2**31 - 1


@dataclass
class ImagePlan:
    """An image of a message whose bytes the export carries (within the upload limit)."""

    data: bytes
    fields: dict  # content_type (from the bytes), size, name, width, height


@dataclass
class MessagePlan:
    key: str  # the message's id in the file, only used to link parents
    parent: str | None
    fields: dict
    created_at: datetime | None
    where: str = "a message"  # how an error names it ("message 3")
    images: list[ImagePlan] = field(default_factory=list)
    # Files of the export's ZIP the message's parts point at (ChatGPT's asset pointers).
    asset_ids: list[str] = field(default_factory=list)


@dataclass
class SummaryImportPlan:
    covers_through: str
    previous: str | None
    fields: dict
    created_at: datetime | None
    where: str = "a summary"


@dataclass
class ConversationPlan:
    fields: dict
    created_at: datetime | None = None
    updated_at: datetime | None = None
    messages: list[MessagePlan] = field(default_factory=list)
    summaries: list[SummaryImportPlan] = field(default_factory=list)
    # The conversation's id in the source app: remembered, so importing it again is a no-op.
    source_id: str = ""
    # The key of the message on screen when exported (ChatGPT's current_node, Open WebUI's
    # currentId); None: the newest message, chatsite's default.
    current: str | None = None
    # Nodes of the source not made messages, by SKIP_REASONS key.
    skipped: Counter = field(default_factory=Counter)
    # Images and files the messages refer to that the export does not carry.
    missing_files: int = 0

    def skip(self, reason: str) -> None:
        self.skipped[reason] += 1

    @property
    def image_bytes(self) -> int:
        """The bytes of the images it carries: what holding the plan costs beyond its text."""
        return sum(len(image.data) for message in self.messages for image in message.images)

    @property
    def branch_points(self) -> int:
        """Messages (or the start) with more than one version under them."""
        under = Counter(message.parent for message in self.messages)
        return sum(1 for count in under.values() if count > 1)


# Why a node of a source was not imported, as the dry run and the result say it.
SKIP_REASONS = {
    "placeholder": gettext_lazy("empty or placeholder node"),
    "hidden": gettext_lazy("hidden from the conversation"),
    "system": gettext_lazy("system message"),
    "tool": gettext_lazy("tool call or tool output"),
    "other_content": gettext_lazy("content other than text"),
}


class ConversationSkipped(Exception):
    """The source holds a conversation with nothing to import (ChatGPT lists deleted or
    corrupted conversations without a mapping): counted, not an error."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def require_storable(plan: ConversationPlan) -> None:
    """ValidationFailed naming the first text of `plan` PostgreSQL cannot store (a NUL, a
    lone surrogate that JSON may carry as `\\ud800`), nested values included: such text
    would fail the write with an encoding error, not a database one."""
    _require_storable(plan.fields, "the conversation")
    for message in plan.messages:
        _require_storable(message.fields, message.where)
        for image in message.images:
            _require_storable(image.fields, f"{message.where} attachment")
    for summary in plan.summaries:
        _require_storable(summary.fields, summary.where)


def _require_storable(fields: dict, where: str) -> None:
    for name, value in fields.items():
        if (at := _unstorable_in(value)) is not None:
            raise ValidationFailed(
                f"{where[:1].upper()}{where[1:]} {name} has a character the database cannot"
                f" store (a NUL or a lone surrogate) at character {at + 1}."
            )


def _unstorable_in(value) -> int | None:
    if isinstance(value, str):
        return unstorable_at(value)
    if isinstance(value, dict):
        parts = [part for pair in value.items() for part in pair]
    elif isinstance(value, list):
        parts = value
    else:
        return None
    return next((at for part in parts if (at := _unstorable_in(part)) is not None), None)


# --- Reading fields with clear errors --------------------------------------------------


class MessageFields:
    """Typed reads from one JSON object; a wrong value raises ValidationFailed naming it."""

    def __init__(self, data, where: str) -> None:
        self.where = where
        if not isinstance(data, dict):
            self.fail("must be a JSON object")
        self.data = data

    def fail(self, problem: str) -> NoReturn:
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

    def epoch(self, name: str, *, milliseconds_from: float | None = None) -> datetime | None:
        """ChatGPT's timestamps: seconds since 1970 as a number (`milliseconds_from`: a
        number at least this large counts milliseconds instead)."""
        seconds = self.number(name)
        if seconds is None:
            return None
        if milliseconds_from is not None and seconds >= milliseconds_from:
            seconds /= 1000
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            self.fail(f"{name} is not a valid timestamp")


class ModelLookup:
    """Catalogue rows by provider slug and model name, each looked up once per import."""

    def __init__(self) -> None:
        self._found: dict[tuple[str, str], ChatModel | None] = {}

    def get(self, provider: str, name: str) -> ChatModel | None:
        key = (provider, name)
        if key not in self._found:
            self._found[key] = catalogue.chat_model_by_name(provider, name)
        return self._found[key]

    def named(self, reference: dict, where: str) -> ChatModel | None:
        fields = MessageFields(reference, f"{where} model")
        return self.get(fields.text("provider"), fields.text("name"))
