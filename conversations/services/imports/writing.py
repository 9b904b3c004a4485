"""Writing planned conversations: the conversations, their messages in bulk with their
parents linked afterwards, their summaries and where they came from, in one transaction,
with the timestamps the file carried and the branch on screen it had. A batch of many takes
about as many statements as one (a large import writes a batch at a time)."""

from django.contrib.auth.models import User
from django.db import connection, transaction

from conversations import user_events
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
    return write_conversations(owner, [plan], source=source)[0]


@transaction.atomic
def write_conversations(
    owner: User, plans: list[ConversationPlan], *, source: str
) -> list[Conversation]:
    """Several conversations and all their rows in one transaction, a few statements for
    them all (a large import writes them in batches), or nothing."""
    conversations = Conversation.objects.bulk_create(
        [Conversation(owner=owner, **plan.fields) for plan in plans]
    )
    pairs = zip(conversations, plans, strict=True)
    by_key = _write_messages([(conversation, plan.messages) for conversation, plan in pairs])
    for conversation, plan, keyed in zip(conversations, plans, by_key, strict=True):
        _write_summaries(conversation, plan.summaries, keyed)
        newest = max((m.created_at for m in plan.messages if m.created_at), default=None)
        # created_at/updated_at are auto fields: given by a plain UPDATE after the insert.
        conversation.created_at = plan.created_at or conversation.created_at
        conversation.updated_at = plan.updated_at or newest or conversation.updated_at
        conversation.has_branches = plan.branch_points > 0
        # The branch on screen in the source; without one, the newest message's.
        conversation.current_leaf = keyed[plan.current] if plan.current else None
    _date_conversations(conversations)
    ImportedConversation.objects.bulk_create(
        ImportedConversation(
            owner=owner, conversation=conversation, source=source, source_id=plan.source_id
        )
        for conversation, plan in zip(conversations, plans, strict=True)
        if plan.source_id
    )
    for conversation in conversations:
        conversation_recall_schedule(conversation_id=conversation.pk)
    if conversations:  # one event for the batch: every page re-reads its whole list
        user_events.conversation_changed(
            user_id=owner.pk,
            conversation_uuid=conversations[0].uuid,
            change=user_events.Change.CREATED,
        )
    return conversations


def _date_conversations(conversations: list[Conversation]) -> None:
    _update_from_values(
        Conversation,
        ["created_at", "updated_at", "has_branches", "current_leaf_id"],
        ["timestamptz", "timestamptz", "boolean", "bigint"],
        [
            (c.pk, c.created_at, c.updated_at, c.has_branches, c.current_leaf_id)
            for c in conversations
        ],
    )


def _write_messages(
    conversations: list[tuple[Conversation, list[MessagePlan]]],
) -> list[dict[str, Message]]:
    """Every conversation's messages: inserted in file order (ids keep parents before
    children, and the newest message, the end of the thread on screen, stays the newest),
    then linked to their parents and given the file's times."""
    messages = [
        Message(conversation=conversation, **plan.fields)
        for conversation, plans in conversations
        for plan in plans
    ]
    Message.objects.bulk_create(messages, batch_size=WRITE_BATCH)
    made = iter(messages)
    keyed_all = []
    for _, plans in conversations:
        keyed = {plan.key: next(made) for plan in plans}
        for plan in plans:
            message = keyed[plan.key]
            message.parent = keyed[plan.parent] if plan.parent else None
            message.created_at = plan.created_at or message.created_at
        keyed_all.append(keyed)
    for start in range(0, len(messages), WRITE_BATCH):
        batch = messages[start : start + WRITE_BATCH]
        _update_from_values(
            Message,
            ["parent_id", "created_at"],
            ["bigint", "timestamptz"],
            [(m.pk, m.parent_id, m.created_at) for m in batch],
        )
    return keyed_all


def _update_from_values(model, columns: list[str], types: list[str], rows: list[tuple]) -> None:
    """One UPDATE ... FROM (VALUES ...) for many rows (rows: the pk, then `columns`):
    bulk_update's CASE per row took half of an import's time."""
    if not rows:
        return
    table = model._meta.db_table
    casts = ", ".join(["%s::bigint", *(f"%s::{t}" for t in types)])
    values_sql = ", ".join([f"({casts})"] * len(rows))
    assignments = ", ".join(f"{c} = v.{c}" for c in columns)
    names = ", ".join(["id", *columns])
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} AS t SET {assignments} FROM (VALUES {values_sql}) AS v({names})"
            " WHERE t.id = v.id",
            [value for row in rows for value in row],
        )


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
