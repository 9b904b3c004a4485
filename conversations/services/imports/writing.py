"""Writing planned conversations: the conversations, every message of their trees, their
summaries and where they came from, in one transaction, with the timestamps the file
carried and the branch on screen it had. Conversations and messages are written by COPY
with their ids taken beforehand (`copying`), so a batch of many conversations takes about
as many statements as one (a large import writes a batch at a time)."""

from dataclasses import dataclass

from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from conversations import user_events
from conversations.models import (
    Attachment,
    Conversation,
    ConversationSummary,
    ImportedConversation,
    Message,
)
from conversations.services.imports.copying import Columns, ids_reserve, rows_copy
from conversations.services.imports.merging import Merge
from conversations.services.imports.plans import ConversationPlan, SummaryImportPlan
from conversations.services.recall import conversation_recall_schedule

_CONVERSATION_COLUMNS = Columns(Conversation)
_MESSAGE_COLUMNS = Columns(Message)


@dataclass
class Written:
    """One conversation as written: the row, and its messages' ids by their key in the plan."""

    conversation: Conversation
    plan: ConversationPlan
    ids: dict[str, int]


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
    message_ids = ids_reserve(Message, sum(len(plan.messages) for plan in plans))
    conversation_ids = ids_reserve(Conversation, len(plans))
    now = timezone.now()
    written = [
        _planned_conversation(owner, plan, next(conversation_ids), message_ids, now)
        for plan in plans
    ]
    # Conversations first: a message's row names its conversation, and the conversation
    # its branch on screen (a deferred check, at commit).
    rows_copy(_CONVERSATION_COLUMNS, (_conversation_values(item.conversation) for item in written))
    rows_copy(_MESSAGE_COLUMNS, _message_values(written, now))
    images = _write_images(owner, written)
    try:
        for item in written:
            _write_summaries(item.conversation, item.plan.summaries, item.ids)
        ImportedConversation.objects.bulk_create(
            ImportedConversation(
                owner=owner,
                conversation=item.conversation,
                source=source,
                source_id=item.plan.source_id,
            )
            for item in written
            if item.plan.source_id
        )
    except BaseException:
        # The transaction takes the rows back; the files stored for them go too.
        _remove_files(images)
        raise
    for item in written:
        conversation_recall_schedule(conversation_id=item.conversation.pk)
    if written:  # one event for the batch: every page re-reads its whole list
        _tell_owner(owner, written[0].conversation)
    return [item.conversation for item in written]


def _tell_owner(owner: User, conversation: Conversation) -> None:
    user_events.conversation_changed(
        user_id=owner.pk, conversation_uuid=conversation.uuid, change=user_events.Change.CREATED
    )


@transaction.atomic
def write_merge(owner: User, merge: Merge) -> Conversation:
    """A newer export's new messages added to the conversation imported before, each under
    the message it follows; the conversation's time moves on, and its branch on screen
    moves to the export's when that is one of the new messages."""
    conversation = Conversation.objects.select_for_update().get(pk=merge.conversation_id)
    reserved = ids_reserve(Message, len(merge.new))
    ids = dict(merge.known) | {message.key: next(reserved) for message in merge.new}
    item = Written(conversation, ConversationPlan(fields={}, messages=merge.new), ids)
    now = timezone.now()
    rows_copy(_MESSAGE_COLUMNS, _message_values([item], now))
    _write_images(owner, [item])
    newest = max((m.created_at or now for m in merge.new), default=conversation.updated_at)
    changes = {
        "updated_at": max(conversation.updated_at, merge.plan.updated_at or newest),
        "has_branches": conversation.has_branches or merge.forks,
    }
    if merge.plan.current in {message.key for message in merge.new}:
        changes["current_leaf_id"] = ids[merge.plan.current]
    Conversation.objects.filter(pk=conversation.pk).update(**changes)
    conversation_recall_schedule(conversation_id=conversation.pk)
    _tell_owner(owner, conversation)  # its place in the list moves with its time
    for name, value in changes.items():
        setattr(conversation, name, value)
    return conversation


def _planned_conversation(owner, plan: ConversationPlan, pk: int, message_ids, now) -> Written:
    ids = {message.key: next(message_ids) for message in plan.messages}
    newest = max((m.created_at for m in plan.messages if m.created_at), default=None)
    conversation = Conversation(pk=pk, owner=owner, **plan.fields)
    conversation.created_at = plan.created_at or now
    conversation.updated_at = plan.updated_at or newest or now
    conversation.has_branches = plan.branch_points > 0
    # The branch on screen in the source; without one, the newest message's.
    conversation.current_leaf_id = ids[plan.current] if plan.current else None
    # The row is written by COPY: the instance stands for a saved one.
    conversation._state.adding, conversation._state.db = False, "default"
    return Written(conversation, plan, ids)


def _conversation_values(conversation: Conversation) -> dict:
    return {name: getattr(conversation, name) for name in _CONVERSATION_COLUMNS.names}


def _message_values(written: list[Written], now):
    """Every message's row, in file order (ids keep parents before children, and the newest
    message, the end of the thread on screen, stays the newest)."""
    for item in written:
        conversation_id, ids = item.conversation.pk, item.ids
        for plan in item.plan.messages:
            values = {
                "id": ids[plan.key],
                "conversation_id": conversation_id,
                "parent_id": ids[plan.parent] if plan.parent else None,
                "created_at": plan.created_at or now,
            }
            for name, value in plan.fields.items():
                if name == "chat_model":
                    values["chat_model_id"] = value.pk if value is not None else None
                else:
                    values[name] = value
            yield values


def _write_images(owner: User, written: list[Written]) -> list[Attachment]:
    """The messages' images: each file stored under a name of ours, then the rows. Should
    the rows fail, the files just stored are removed (the transaction takes the rows)."""
    images: list[Attachment] = []
    try:
        for item in written:
            for message in item.plan.messages:
                for image in message.images:
                    attachment = Attachment(
                        owner=owner, message_id=item.ids[message.key], **image.fields
                    )
                    extension = attachment.content_type.split("/")[1]
                    stored = ContentFile(image.data)
                    attachment.file.save(f"{attachment.uuid}.{extension}", stored, save=False)
                    images.append(attachment)
        Attachment.objects.bulk_create(images)
    except BaseException:
        _remove_files(images)
        raise
    return images


def _remove_files(images: list[Attachment]) -> None:
    for attachment in images:
        attachment.file.delete(save=False)


def _write_summaries(
    conversation: Conversation, plans: list[SummaryImportPlan], ids: dict[str, int]
) -> None:
    by_message: dict[str, ConversationSummary] = {}
    for plan in plans:
        summary = ConversationSummary.objects.create(
            conversation=conversation,
            covers_through_id=ids[plan.covers_through],
            previous=by_message[plan.previous] if plan.previous else None,
            **plan.fields,
        )
        if plan.created_at:
            ConversationSummary.objects.filter(pk=summary.pk).update(created_at=plan.created_at)
        by_message[plan.covers_through] = summary
