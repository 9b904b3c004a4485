"""Reads that decide what a request carries: the context window, summaries and their plan.

A request is: the system prompt (with the latest summary on the thread, framed as a summary
of the earlier conversation), then every sendable message after the summary's last covered
message, verbatim and once each, as far as the budget allows. When turns do not fit (a
summary is late or failed) the oldest are dropped and counted: the window never overflows.
The thread is walked newest first and only as far as needed, so the cost follows the size of
the context, not of the history.
"""

import base64
from collections.abc import Iterator
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import BigIntegerField, BooleanField, Count, Q, TextField
from django.db.models.expressions import RawSQL

from conversations import providers
from conversations.models import (
    IN_FLIGHT,
    Attachment,
    ChatModel,
    Conversation,
    ConversationSummary,
    Message,
    MessageStatus,
    Role,
)
from conversations.selectors import attach_images, message_images, thread_backwards
from conversations.tokens import PER_MESSAGE_OVERHEAD, estimate_message_tokens

# Replies whose text the model may see again: finished, or stopped with text kept.
REUSABLE_REPLY_STATUSES = {
    MessageStatus.COMPLETE,
    MessageStatus.TRUNCATED,
    MessageStatus.CANCELLED,
    MessageStatus.INTERRUPTED,
}
# Room for what token estimates get wrong.
CONTEXT_SAFETY_MARGIN = 0.9
SUMMARY_HEADING = "Summary of the earlier conversation (the messages below continue from it):"


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
    return message.status in REUSABLE_REPLY_STATUSES and bool(message.content)


def _ratio(conversation: Conversation) -> float:
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


def summary_boundaries(conversation: Conversation) -> dict[int, int]:
    """covers_through message id -> summary id, for every summary of the conversation."""
    rows = ConversationSummary.objects.filter(conversation=conversation)
    return dict(rows.values_list("covers_through_id", "id"))


@dataclass
class ReplyContext:
    messages: list[dict] = field(default_factory=list)
    estimated_tokens: int = 0
    # The same estimate before calibration: what calibration compares with reported usage.
    raw_estimated_tokens: int = 0
    dropped_turns: int = 0
    budget: int = 0
    summary: ConversationSummary | None = None
    first_message_id: int | None = None
    # Messages after the summary boundary (sent or dropped) and the tokens of those sent.
    uncovered_turns: int = 0
    uncovered_tokens: int = 0
    # The reply is asked for a JSON object (response_format json_object).
    json_mode: bool = False

    def meta(self) -> dict:
        """What the reply records about its request (shown in admin)."""
        return {
            "messages": len(self.messages),
            "estimated_tokens": self.estimated_tokens,
            "raw_estimated_tokens": self.raw_estimated_tokens,
            "dropped_turns": self.dropped_turns,
            "budget": self.budget,
            "summary_id": self.summary.pk if self.summary else None,
            "summary_through_id": self.summary.covers_through_id if self.summary else None,
            "first_message_id": self.first_message_id,
            "uncovered_turns": self.uncovered_turns,
            "uncovered_tokens": self.uncovered_tokens,
            "json_mode": self.json_mode,
        }


def _system_message(conversation: Conversation, summary: ConversationSummary | None) -> str:
    parts = [conversation.system_prompt.strip()]
    if summary is not None:
        parts.append(f"{SUMMARY_HEADING}\n{summary.text}")
    return "\n\n".join(p for p in parts if p)


def context_for_reply(reply: Message) -> ReplyContext:
    conversation = reply.conversation
    ratio = _ratio(conversation)
    context = ReplyContext(budget=context_budget(conversation))
    walk = RequestThread(conversation, reply.parent_id or reply.id)
    # Keep room for a summary we may only find at the end of the walk.
    reserve = settings.SUMMARY_MAX_TOKENS + PER_MESSAGE_OVERHEAD if walk.has_summaries else 0
    base = message_tokens(Message(role=Role.SYSTEM, content=conversation.system_prompt), ratio)
    used, turns, boundary = base, [], None
    for message in walk:
        if message.summary_id is not None:
            boundary = message
            break
        if message.id == reply.id or not sendable(message):
            continue
        cost = message_tokens(message, ratio)
        if used + reserve + cost > context.budget and turns:
            context.dropped_turns, boundary = _dropped(conversation, message, walk)
            break
        turns.append(message)
        used += cost
    turns.reverse()
    context.summary = _summary_ending_at(boundary) if boundary else None
    system = _system_message(conversation, context.summary)
    # Only `content` is sent: a reply's reasoning stays in the database.
    vision = bool(conversation.chat_model and conversation.chat_model.supports_vision)
    context.messages = ([{"role": Role.SYSTEM, "content": system}] if system else []) + [
        {"role": m.role, "content": message_content(m, vision=vision)} for m in turns
    ]
    if reply.chat_model and providers.uses_json_mode(reply.chat_model, conversation):
        context.json_mode = True
        context.messages = providers.with_json_instruction(context.messages)
    summary_tokens = message_tokens(Message(role=Role.SYSTEM, content=system), ratio) - base
    context.estimated_tokens = used + max(summary_tokens, 0)
    context.raw_estimated_tokens = int(context.estimated_tokens / ratio)
    context.first_message_id = turns[0].id if turns else None
    context.uncovered_turns = len(turns) + context.dropped_turns
    context.uncovered_tokens = used - base
    return context


def _summary_ending_at(message: Message) -> ConversationSummary:
    """The summary the walk found, from the columns it read with the message."""
    return ConversationSummary(
        pk=message.summary_id,
        conversation_id=message.conversation_id,
        covers_through_id=message.id,
        text=message.summary_text,
    )


def _dropped(conversation, first_dropped: Message, walk) -> tuple[int, Message | None]:
    """How many sendable turns did not fit, and the message a summary ends at below them
    if any."""
    if not walk.has_summaries:
        # No summary to find: count with one query instead of walking the whole history
        # (exact for a linear thread; edits and retries on old branches count too).
        older = Message.objects.filter(conversation=conversation, id__lte=first_dropped.id)
        reusable = Q(role=Role.ASSISTANT, status__in=REUSABLE_REPLY_STATUSES) & ~Q(content="")
        counted = older.aggregate(n=Count("id", filter=Q(role=Role.USER) | reusable))
        return counted["n"], None
    dropped = 1
    for message in walk:
        if message.summary_id is not None:
            return dropped, message
        dropped += sendable(message)
    return dropped, None


class RequestThread:
    """The thread a request is built from: the path from `leaf_id` to the root, newest
    first, read in batches that start small and grow, as far as the caller iterates.

    Each query loads only what a request uses of a message, and answers in the same
    statement which summary ends at it (`summary_id`, `summary_text`), whether it has
    images (loaded onto it only then, as `loaded_images`) and whether the conversation has
    any summary (`has_summaries`, known from the first batch): one query where it took
    four, with rows a fraction of the size. A summarised conversation is usually read in
    one batch: its newest summary ends 30 to 60 turns back.
    """

    FIRST_BATCH = 64
    MAX_BATCH = 512
    FIELDS = ("id", "conversation_id", "parent_id", "role", "status", "content")

    def __init__(self, conversation: Conversation, leaf_id: int) -> None:
        self.conversation = conversation
        self._wanted: int | None = leaf_id
        self._size = self.FIRST_BATCH
        self._take(self._load(leaf_id, self._size))
        first = next(iter(self._batch.values()), None)
        self.has_summaries = bool(first and first.has_summaries)

    def __iter__(self) -> Iterator[Message]:
        # Resumable: _dropped carries on from the message after the one that did not fit.
        while self._wanted is not None:
            message = self._batch.get(self._wanted)
            if message is None:
                if not self._take_next():
                    return
                continue
            self._wanted = message.parent_id
            yield message

    def _take(self, batch: list[Message]) -> None:
        self._batch = {m.id: m for m in batch}
        self._lowest = batch[-1].id if batch else None

    def _take_next(self) -> bool:
        """Load the batch below the current one; False when there is nothing more to find."""
        if self._lowest is None or self._wanted >= self._lowest:
            return False  # the history ended, or the parent is missing (a broken tree)
        self._size = min(self._size * 2, self.MAX_BATCH)
        self._take(self._load(self._lowest - 1, self._size))
        return bool(self._batch)

    def _load(self, upper: int, size: int) -> list[Message]:
        rows = (
            Message.objects.filter(conversation_id=self.conversation.pk, id__lte=upper)
            .order_by("-id")
            .only(*self.FIELDS)
            .annotate(
                summary_id=RawSQL(_SUMMARY_ENDING_HERE.format("s.id"), [], BigIntegerField()),
                summary_text=RawSQL(_SUMMARY_ENDING_HERE.format("s.text"), [], TextField()),
                has_images=RawSQL(_HAS_IMAGES, [], output_field=BooleanField()),
                has_summaries=RawSQL(
                    _HAS_SUMMARIES, [self.conversation.pk], output_field=BooleanField()
                ),
            )
        )
        batch = list(rows[:size])
        with_images = [m for m in batch if m.has_images]
        attach_images(with_images)
        for message in batch:
            if not message.has_images:
                message.loaded_images = []
        return batch


# Hand-written subqueries: as ORM expressions they cost more CPU to compile than they take
# to run, on every reply.
_MESSAGE = Message._meta.db_table
_SUMMARY_ENDING_HERE = (
    f"SELECT {{}} FROM {ConversationSummary._meta.db_table} AS s"
    f" WHERE s.covers_through_id = {_MESSAGE}.id"
)
_HAS_IMAGES = (
    f"EXISTS (SELECT 1 FROM {Attachment._meta.db_table} AS a WHERE a.message_id = {_MESSAGE}.id)"
)
_HAS_SUMMARIES = (
    f"EXISTS (SELECT 1 FROM {ConversationSummary._meta.db_table} AS s WHERE s.conversation_id = %s)"
)


# --- Summaries -------------------------------------------------------------------------


@dataclass
class SummaryPlacement:
    summary: ConversationSummary | None = None
    # The divider follows this shown message; None with a summary: above everything shown.
    after_uuid: str | None = None


def summary_for_page(conversation: Conversation, shown: list[Message]) -> SummaryPlacement:
    """The newest summary on the thread shown, and where its divider goes."""
    boundaries = summary_boundaries(conversation)
    if not boundaries:
        return SummaryPlacement()
    for message in reversed(shown):
        if message.id in boundaries:
            summary = ConversationSummary.objects.get(pk=boundaries[message.id])
            return SummaryPlacement(summary, str(message.uuid))
    first_id = shown[0].id if shown else None
    older = [through for through in boundaries if first_id is None or through < first_id]
    if not older:
        return SummaryPlacement()
    return SummaryPlacement(ConversationSummary.objects.get(pk=boundaries[max(older)]))


def summary_latest(conversation: Conversation) -> ConversationSummary | None:
    return (
        ConversationSummary.objects.filter(conversation=conversation)
        .order_by("-covers_through_id")
        .first()
    )


def summary_covering(conversation: Conversation, through_id: int) -> ConversationSummary | None:
    return ConversationSummary.objects.filter(
        conversation=conversation, covers_through_id=through_id
    ).first()


def summary_chat_model(conversation: Conversation) -> ChatModel:
    """SUMMARY_MODEL ("provider/model") when it names a catalogue model, else the chat's own."""
    slug, _, name = settings.SUMMARY_MODEL.partition("/")
    if slug and name:
        found = (
            ChatModel.objects.filter(provider__slug=slug, name=name)
            .select_related("provider")
            .first()
        )
        if found is not None:
            return found
    return conversation.chat_model


def summary_thresholds_passed(conversation: Conversation, *, tokens: int, turns: int) -> bool:
    budget = context_budget(conversation)
    return (
        tokens >= settings.SUMMARY_TRIGGER_RATIO * budget or turns >= settings.SUMMARY_TRIGGER_TURNS
    )


def summary_due_after(reply: Message) -> bool:
    """Judged from what the reply's own request carried: no extra queries on the hot path."""
    meta = reply.context or {}
    if not meta or reply.conversation.chat_model is None:
        return False
    if meta.get("dropped_turns"):
        return True
    reply_tokens = message_tokens(reply, _ratio(reply.conversation)) if sendable(reply) else 0
    return summary_thresholds_passed(
        reply.conversation,
        tokens=int(meta.get("uncovered_tokens") or 0) + reply_tokens,
        turns=int(meta.get("uncovered_turns") or 0) + 1,
    )


@dataclass
class SummaryPlan:
    previous: ConversationSummary | None
    turns: list[Message]
    through: Message


def _uncovered(conversation, leaf_id) -> tuple[list[Message], ConversationSummary | None]:
    boundaries = summary_boundaries(conversation)
    uncovered, previous = [], None
    for message in thread_backwards(conversation, leaf_id):
        if message.id in boundaries:
            previous = ConversationSummary.objects.get(pk=boundaries[message.id])
            break
        if sendable(message) and message.status not in IN_FLIGHT:
            uncovered.append(message)
    uncovered.reverse()
    return uncovered, previous


def summary_plan(
    conversation: Conversation, *, leaf_id: int, through_id: int | None = None
) -> SummaryPlan | None:
    """Which turns the next summary condenses, or None when nothing is due.

    The older share of the uncovered turns (by tokens), ending after an assistant message so
    the verbatim part starts with the user, capped so the summary request fits its model.
    """
    uncovered, previous = _uncovered(conversation, leaf_id)
    if through_id is not None:
        turns = [m for m in uncovered if m.id <= through_id]
        return SummaryPlan(previous, turns, turns[-1]) if turns else None
    ratio = _ratio(conversation)
    costs = [message_tokens(m, ratio) for m in uncovered]
    if not summary_thresholds_passed(conversation, tokens=sum(costs), turns=len(uncovered)):
        return None
    cut = _cut(uncovered, costs, summary_chat_model(conversation), previous)
    return SummaryPlan(previous, uncovered[: cut + 1], uncovered[cut]) if cut is not None else None


def _cut(uncovered, costs, chat_model, previous) -> int | None:
    target = sum(costs) * settings.SUMMARY_OLDER_SHARE
    room = chat_model.context_window - settings.SUMMARY_MAX_TOKENS - 1000
    room -= previous.token_count if previous else 0
    total, cut = 0, None
    for index, message in enumerate(uncovered[:-2]):  # the last exchange always stays verbatim
        total += costs[index]
        if total > room:
            break
        if message.role == Role.ASSISTANT:
            cut = index
            if total >= target:
                break
    return cut
