"""Summaries: which one a page shows and where its divider goes, the model that writes them,
when the next one is due (judged from what a reply's request carried) and which turns it
condenses."""

from dataclasses import dataclass
from typing import cast

from django.conf import settings

from conversations.context.recall import recall_budget
from conversations.context.window import (
    context_budget,
    conversation_counter,
    message_tokens,
    sendable,
    summary_reserve,
    system_prompt_tokens,
)
from conversations.models import (
    ChatModel,
    Conversation,
    ConversationSummary,
    Message,
    MessageStatus,
    Role,
)
from conversations.providers import catalogue
from conversations.selectors import thread_backwards, thread_path_ids


def summary_boundaries(conversation: Conversation) -> dict[int, int]:
    """covers_through message id -> summary id, for every summary of the conversation."""
    rows = ConversationSummary.objects.filter(conversation=conversation)
    return dict(rows.values_list("covers_through_id", "id"))


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


def summary_placement_on_thread(conversation: Conversation, summary_id: int) -> SummaryPlacement:
    """Where the divider of a summary just written goes on the thread on screen: after the
    last message it covers, when that message is on the thread and no later summary of the
    thread exists. Nothing otherwise (another branch's summary, or one deleted meanwhile)."""
    summary = (
        ConversationSummary.objects.filter(pk=summary_id, conversation=conversation)
        .select_related("covers_through")
        .first()
    )
    if summary is None:
        return SummaryPlacement()
    path = set(thread_path_ids(conversation))
    through = summary.covers_through_id
    boundaries = summary_boundaries(conversation)
    later = [other for other in boundaries if other in path and other > through]
    if through not in path or later:
        return SummaryPlacement()
    return SummaryPlacement(summary, str(summary.covers_through.uuid))


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
    if parsed := catalogue.provider_and_model(settings.SUMMARY_MODEL):
        slug, name = parsed
        found = (
            ChatModel.objects.filter(provider__slug=slug, name=name)
            .select_related("provider")
            .first()
        )
        if found is not None:
            return found
    # Summaries and titles follow a reply: its conversation has a model.
    return cast(ChatModel, conversation.chat_model)


def turns_room(conversation: Conversation) -> int:
    """The tokens a summarised request leaves its verbatim turns: the budget less the
    system prompt and the shares kept for the summary and for recall (what
    context_for_reply reserves). Summaries are judged against this, not the whole budget:
    judged against the budget, the turns ran out of room before a summary was due."""
    budget = context_budget(conversation)
    reserved = (
        system_prompt_tokens(conversation, conversation_counter(conversation))
        + summary_reserve()
        + recall_budget(conversation, budget)
    )
    return max(budget - reserved, 0)


def summary_trigger_tokens(conversation: Conversation) -> float:
    return settings.SUMMARY_TRIGGER_RATIO * turns_room(conversation)


def summary_thresholds_passed(conversation: Conversation, *, tokens: int, turns: int) -> bool:
    return tokens >= summary_trigger_tokens(conversation) or turns >= settings.SUMMARY_TRIGGER_TURNS


def summary_due_after(reply: Message) -> bool:
    """Judged from what the reply's own request carried: no extra queries on the hot path."""
    meta = reply.context or {}
    if not meta or reply.conversation.chat_model is None:
        return False
    if meta.get("dropped_turns"):
        return True
    counter = conversation_counter(reply.conversation)
    reply_tokens = message_tokens(reply, counter) if sendable(reply) else 0
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
        if sendable(message) and message.status not in MessageStatus.IN_FLIGHT:
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
    counter = conversation_counter(conversation)
    costs = [message_tokens(m, counter) for m in uncovered]
    if not summary_thresholds_passed(conversation, tokens=sum(costs), turns=len(uncovered)):
        return None
    target = _condensed_target(conversation, sum(costs))
    cut = _cut(uncovered, costs, target, summary_chat_model(conversation), previous)
    return SummaryPlan(previous, uncovered[: cut + 1], uncovered[cut]) if cut is not None else None


def _condensed_target(conversation: Conversation, uncovered_tokens: int) -> float:
    """Tokens to condense: the older share, and more when the verbatim rest would not stay
    well under the trigger. A summary that lands late (turns came faster than the calls)
    then condenses far enough ahead for the next turns to fit before the one after it."""
    kept = summary_trigger_tokens(conversation) * (1 - settings.SUMMARY_OLDER_SHARE)
    return max(uncovered_tokens * settings.SUMMARY_OLDER_SHARE, uncovered_tokens - kept)


def _cut(uncovered, costs, target, chat_model, previous) -> int | None:
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
