"""Writing one planned conversation: the conversation, its messages in bulk with their
parents linked afterwards, its summaries and where it came from, in a single transaction,
with the timestamps the file carried and the branch on screen it had."""

from django.contrib.auth.models import User
from django.db import transaction

from conversations.models import (
    Conversation,
    ConversationSummary,
    ImportedConversation,
    Message,
)
from conversations.services.imports.plans import ConversationPlan, MessagePlan, SummaryImportPlan
from conversations.services.recall import conversation_recall_schedule

# Rows per INSERT / UPDATE statement when writing a long conversation.
WRITE_BATCH = 500


@transaction.atomic
def write_conversation(owner: User, plan: ConversationPlan, *, source: str) -> Conversation:
    """One conversation and all its rows, or nothing (the caller reports the failure)."""
    conversation = Conversation.objects.create(owner=owner, **plan.fields)
    by_key = _write_messages(conversation, plan.messages)
    _write_summaries(conversation, plan.summaries, by_key)
    newest = max((m.created_at for m in plan.messages if m.created_at), default=None)
    # created_at/updated_at are auto fields: set them after the fact, by a plain UPDATE.
    Conversation.objects.filter(pk=conversation.pk).update(
        created_at=plan.created_at or conversation.created_at,
        updated_at=plan.updated_at or newest or conversation.updated_at,
        has_branches=plan.branch_points > 0,
        # The branch on screen in the source; without one, the newest message's.
        current_leaf=by_key[plan.current] if plan.current else None,
    )
    if plan.source_id:
        ImportedConversation.objects.create(
            owner=owner, conversation=conversation, source=source, source_id=plan.source_id
        )
    conversation.refresh_from_db()
    conversation_recall_schedule(conversation_id=conversation.pk)
    return conversation


def _write_messages(conversation: Conversation, plans: list[MessagePlan]) -> dict[str, Message]:
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
    conversation: Conversation, plans: list[SummaryImportPlan], by_key: dict[str, Message]
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
