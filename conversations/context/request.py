"""Building a reply's request: the system prompt with the latest summary on the thread, then
the newest sendable turns that fit the budget, read by `RequestThread`, a walk up the thread
that loads only what a request uses and learns in the same queries where summaries end."""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import cast

from django.db.models import BigIntegerField, BooleanField, Count, Q, TextField
from django.db.models.expressions import RawSQL

from conversations.context.recall import Recalled, recall_budget, recall_for, recall_query
from conversations.context.window import (
    context_budget,
    conversation_counter,
    cut_to_fit,
    message_content,
    message_cost,
    sendable,
    summary_reserve,
    system_prompt_tokens,
)
from conversations.models import (
    Attachment,
    Conversation,
    ConversationSummary,
    Message,
    MessageStatus,
    Role,
)
from conversations.providers import profiles
from conversations.recall.rankings import Scope
from conversations.selectors import attach_images, thread_path_ids
from conversations.tokens import TokenCounter

SUMMARY_HEADING = "Summary of the earlier conversation (the messages below continue from it):"


@dataclass
class ReplyContext:
    messages: list[dict] = field(default_factory=list)
    estimated_tokens: int = 0
    # The same count before calibration, as (CJK part, the rest): what calibration
    # compares with reported usage, and the tokenizer it was counted with ("": estimate).
    raw_tokens: tuple[int, int] = (0, 0)
    tokenizer: str = ""
    dropped_turns: int = 0
    budget: int = 0
    summary: ConversationSummary | None = None
    first_message_id: int | None = None
    # Messages after the summary boundary (sent or dropped) and the tokens of those sent.
    uncovered_turns: int = 0
    uncovered_tokens: int = 0
    # The reply is asked for a JSON object (response_format json_object).
    json_mode: bool = False
    # What recall added (context/recall.py): method, excerpts' messages and scores.
    recall: dict = field(default_factory=dict)
    # The newest turn did not fit alone and was sent with its middle cut out: which one,
    # how long it is and how many characters were cut.
    cut: dict = field(default_factory=dict)

    def meta(self) -> dict:
        """What the reply records about its request (shown in admin)."""
        return {
            "messages": len(self.messages),
            "estimated_tokens": self.estimated_tokens,
            "raw_estimated_tokens": sum(self.raw_tokens),
            "raw_cjk_tokens": self.raw_tokens[0],
            "tokenizer": self.tokenizer,
            "dropped_turns": self.dropped_turns,
            "budget": self.budget,
            "summary_id": self.summary.pk if self.summary else None,
            "summary_through_id": self.summary.covers_through_id if self.summary else None,
            "first_message_id": self.first_message_id,
            "uncovered_turns": self.uncovered_turns,
            "uncovered_tokens": self.uncovered_tokens,
            "json_mode": self.json_mode,
            "recall": self.recall,
            "cut": self.cut,
        }


def _system_message(
    conversation: Conversation, summary: ConversationSummary | None, recalled: str = ""
) -> str:
    """The system prompt, then the summary, then recalled excerpts: what comes before the
    verbatim turns, in the order the conversation had them."""
    parts = [conversation.system_prompt.strip()]
    if summary is not None:
        parts.append(f"{SUMMARY_HEADING}\n{summary.text}")
    parts.append(recalled)
    return "\n\n".join(p for p in parts if p)


@dataclass
class RequestPlan:
    """A request before recall and before its messages are built: the budget, the newest
    turns that fit it and the summary above them. A reply's request is built from it
    (context_for_reply) and the header's gauge shows the next request from it
    (context/gauge.py), so the two count alike."""

    conversation: Conversation
    context: ReplyContext
    counter: TokenCounter
    # The verbatim turns, oldest first, and their tokens as the budget counted them.
    turns: list[Message]
    turns_tokens: int
    # The share of the budget kept for recalled excerpts (0: recall is off).
    recall_budget: int

    @property
    def recalls(self) -> bool:
        """Recall runs when part of the branch is not sent verbatim: a summary covers it,
        or the window dropped it."""
        covered = self.context.summary is not None or self.context.dropped_turns
        return bool(self.recall_budget and self.turns and covered)

    def system_tokens(self, *, summary: bool = True) -> int:
        """The system message's tokens with the system prompt (and the summary), counted as
        the request counts them; recalled excerpts come on top."""
        shown = self.context.summary if summary else None
        return _system_tokens(self.counter, _system_message(self.conversation, shown))[0]


def request_plan(
    conversation: Conversation, *, leaf_id: int, reply_id: int | None = None
) -> RequestPlan:
    """The plan of a request continuing the thread that ends at `leaf_id` (the reply being
    asked for, `reply_id`, is never sent)."""
    counter = conversation_counter(conversation)
    context = ReplyContext(budget=context_budget(conversation), tokenizer=counter.tokenizer)
    walk = RequestThread(conversation, leaf_id)
    # Keep room for a summary we may only find at the end of the walk, and for recall.
    recalling = recall_budget(conversation, context.budget)
    reserve = (summary_reserve() if walk.has_summaries else 0) + recalling
    base = system_prompt_tokens(conversation, counter)
    turns, used, boundary = _turns_that_fit(
        context, walk, conversation, reply_id, counter, base + reserve
    )
    context.summary = _summary_ending_at(boundary) if boundary else None
    return RequestPlan(conversation, context, counter, turns, used, recalling)


def context_for_reply(reply: Message) -> ReplyContext:
    conversation = reply.conversation
    plan = request_plan(conversation, leaf_id=reply.parent_id or reply.id, reply_id=reply.id)
    context, counter, turns = plan.context, plan.counter, plan.turns
    recalled = Recalled()
    if plan.recalls:
        recalled = recall_for(
            conversation,
            query=recall_query(turns),
            scope=_recall_scope(conversation, turns[0], reply),
            budget=plan.recall_budget,
            counter=counter,
        )
        context.recall = recalled.meta()
    system = _system_message(conversation, context.summary, recalled.block)
    # Only `content` is sent: a reply's reasoning stays in the database.
    vision = bool(conversation.chat_model and conversation.chat_model.supports_vision)
    context.messages = ([{"role": Role.SYSTEM, "content": system}] if system else []) + [
        {"role": m.role, "content": message_content(m, vision=vision)} for m in turns
    ]
    if reply.chat_model and profiles.uses_json_mode(reply.chat_model, conversation):
        context.json_mode = True
        context.messages = profiles.with_json_instruction(context.messages)
    system_tokens, system_parts = _system_tokens(counter, system)
    context.estimated_tokens = plan.turns_tokens + system_tokens
    cjk, rest = context.raw_tokens
    context.raw_tokens = (cjk + system_parts[0], rest + system_parts[1])
    context.first_message_id = turns[0].id if turns else None
    context.uncovered_turns = len(turns) + context.dropped_turns
    context.uncovered_tokens = plan.turns_tokens
    return context


def _system_tokens(counter: TokenCounter, system: str) -> tuple[int, tuple[int, int]]:
    """What the system message counts as (none is sent when it is empty), and its raw parts."""
    if not system:
        return 0, (0, 0)
    parts = counter.raw_message(Role.SYSTEM, system)
    return counter.calibrated(parts), parts


def _turns_that_fit(
    context: ReplyContext,
    walk: "RequestThread",
    conversation: Conversation,
    reply_id: int | None,
    counter: TokenCounter,
    taken: int,
) -> tuple[list[Message], int, Message | None]:
    """The newest sendable turns that fit beside what is `taken` already, oldest first, the
    tokens they use and the message a summary ends at (or the turns dropped, counted in
    `context`). Their raw counts add up in `context.raw_tokens`, for calibration."""
    used, raw_cjk, raw_rest = 0, 0, 0
    boundary: Message | None = None
    turns: list[Message] = []
    for message in walk:
        if message.summary_id is not None:  # type: ignore[attr-defined]  # see _load
            boundary = message
            break
        if message.id == reply_id or not sendable(message):
            continue
        cost, parts = message_cost(message, counter)
        if taken + used + cost > context.budget:
            if turns:
                context.dropped_turns, boundary = _dropped(conversation, message, walk)
                break
            # The newest turn alone is larger than the window (the chat moved to a smaller
            # model since it was sent): send it cut, and say so, rather than overflow.
            context.cut = _cut(message, max(context.budget - taken, 0), counter)
            cost, parts = message_cost(message, counter)
        turns.append(message)
        used, raw_cjk, raw_rest = used + cost, raw_cjk + parts[0], raw_rest + parts[1]
    turns.reverse()
    context.raw_tokens = (raw_cjk, raw_rest)
    return turns, used, boundary


def _cut(message: Message, room: int, counter: TokenCounter) -> dict:
    length = len(message.content)
    cut = cut_to_fit(message, room, counter)
    return {"message_id": message.id, "length": length, "characters": cut}


def _recall_scope(conversation: Conversation, first_sent: Message, reply: Message) -> Scope:
    """The messages of the reply's branch before the first one sent verbatim: what the
    summary covers or the window dropped, the candidates for recall. Without branches every
    older message is on it; with some, the branch's path is read to say which."""
    scope = Scope(conversation_id=conversation.pk, before_id=first_sent.id)
    if not conversation.has_branches:
        return scope
    path = thread_path_ids(conversation, leaf_id=reply.parent_id or reply.id)
    older = path[: path.index(first_sent.id)] if first_sent.id in path else []
    return Scope(conversation.pk, before_id=first_sent.id, message_ids=tuple(older))


def _summary_ending_at(message: Message) -> ConversationSummary:
    """The summary the walk found, from the columns it read with the message."""
    return ConversationSummary(
        pk=message.summary_id,  # type: ignore[attr-defined]  # annotated by _load
        conversation_id=message.conversation_id,
        covers_through_id=message.id,
        text=message.summary_text,  # type: ignore[attr-defined]  # annotated by _load
    )


def _dropped(conversation, first_dropped: Message, walk) -> tuple[int, Message | None]:
    """How many sendable turns did not fit, and the message a summary ends at below them
    if any."""
    if not walk.has_summaries:
        # No summary to find: count with one query instead of walking the whole history
        # (exact for a linear thread; edits and retries on old branches count too).
        older = Message.objects.filter(conversation=conversation, id__lte=first_dropped.id)
        reusable = Q(role=Role.ASSISTANT, status__in=MessageStatus.REUSABLE) & ~Q(content="")
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
        self.has_summaries = bool(first and first.has_summaries)  # type: ignore[attr-defined]

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

    def _take(self, batch: Sequence[Message]) -> None:
        self._batch = {m.id: m for m in batch}
        self._lowest = batch[-1].id if batch else None

    def _take_next(self) -> bool:
        """Load the batch below the current one; False when there is nothing more to find."""
        if self._lowest is None or cast(int, self._wanted) >= self._lowest:
            return False  # the history ended, or the parent is missing (a broken tree)
        self._size = min(self._size * 2, self.MAX_BATCH)
        self._take(self._load(self._lowest - 1, self._size))
        return bool(self._batch)

    def _load(self, upper: int, size: int) -> Sequence[Message]:
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
