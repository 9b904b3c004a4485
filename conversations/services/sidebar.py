"""What the sidebar does to a conversation: rename, archive, unarchive, delete.

None of these bumps `updated_at`: it means "last activity" and places the conversation in
the sidebar's date groups, and tidying the list is not activity.
"""

from django.db import transaction
from django.utils.translation import gettext

from conversations import user_events
from conversations.errors import ValidationFailed
from conversations.models import Attachment, Conversation, Message, MessageStatus

TITLE_MAX_CHARS = 200  # Conversation.title's max_length


def conversation_announce_if_moving_up(conversation: Conversation) -> None:
    """Called as the conversation's last activity is bumped (a message sent): when another
    of the owner's listed chats is above it, its open pages move its item to the top. The
    chat already first moves nowhere, and its pages are told nothing."""
    if conversation.archived:
        return  # in no sidebar list
    first = (
        Conversation.objects.filter(owner_id=conversation.owner_id, archived=False)
        .order_by("-updated_at")
        .values_list("pk", flat=True)
        .first()
    )
    if first is not None and first != conversation.pk:
        user_events.conversation_changed(
            user_id=conversation.owner_id,
            conversation_uuid=conversation.uuid,
            change=user_events.Change.MOVED,
        )


def conversation_rename(*, conversation: Conversation, title: str) -> Conversation:
    """Give the conversation the user's title; a generated title never replaces it.

    Whitespace runs (a pasted line break) become one space; the result must be 1 to 200
    characters. One UPDATE writes the title and `title_from_user` together, so a title
    model finishing at the same moment (title_generate writes only while the flag is
    False) cannot overwrite it.
    """
    title = " ".join((title or "").split())
    if not 1 <= len(title) <= TITLE_MAX_CHARS:
        raise ValidationFailed(
            gettext("Give the conversation a title of 1 to %(max)d characters.")
            % {"max": TITLE_MAX_CHARS}
        )
    Conversation.objects.filter(pk=conversation.pk).update(title=title, title_from_user=True)
    conversation.title, conversation.title_from_user = title, True
    _tell_owner(conversation, user_events.Change.RENAMED)
    return conversation


def _tell_owner(conversation: Conversation, change: user_events.Change) -> None:
    user_events.conversation_changed(
        user_id=conversation.owner_id, conversation_uuid=conversation.uuid, change=change
    )


def _set_archived(conversation: Conversation, archived: bool) -> Conversation:
    Conversation.objects.filter(pk=conversation.pk).update(archived=archived)
    conversation.archived = archived
    change = user_events.Change.ARCHIVED if archived else user_events.Change.UNARCHIVED
    _tell_owner(conversation, change)
    return conversation


def conversation_archive(*, conversation: Conversation) -> Conversation:
    """Hide the conversation from the sidebar; it stays readable, searchable and exportable."""
    return _set_archived(conversation, True)


def conversation_unarchive(*, conversation: Conversation) -> Conversation:
    """Back in the sidebar, in the date group of its last activity."""
    return _set_archived(conversation, False)


@transaction.atomic
def conversation_delete(*, conversation: Conversation) -> None:
    """Delete the conversation with its messages, summaries and images, for good.

    Usage records stay in the ledger with the conversation cleared (SET_NULL). Image files
    are removed from storage only once the rows are gone for sure.

    Callers stop a reply in flight first (and give it a moment to be saved, so its usage is
    recorded). If it is still in flight it is deleted with the rest: the generator's writes
    are conditional updates of its row and change nothing once it is gone.
    """
    # Locks, in the order the generator takes them, so neither side waits on the other in
    # a cycle. A generator finishing right now updates its reply, then inserts the usage
    # row: waiting for the reply's row lock means that insert is committed before the rows
    # to clear or delete are collected below. The conversation's row lock then makes any
    # later insert that names it (a title, a summary) wait, and fail, rather than leave a
    # usage row pointing at a deleted conversation.
    list(
        Message.objects.select_for_update()
        .filter(conversation=conversation, status__in=MessageStatus.IN_FLIGHT)
        .values_list("pk", flat=True)
    )
    list(Conversation.objects.select_for_update().filter(pk=conversation.pk).values_list("pk"))
    files = list(
        Attachment.objects.filter(message__conversation=conversation).values_list("file", flat=True)
    )
    uuid, owner_id = conversation.uuid, conversation.owner_id
    conversation.delete()
    storage = Attachment._meta.get_field("file").storage
    transaction.on_commit(lambda: _remove_files(storage, files))
    user_events.conversation_changed(
        user_id=owner_id, conversation_uuid=uuid, change=user_events.Change.DELETED
    )


def _remove_files(storage, names: list[str]) -> None:
    for name in names:
        if name:
            storage.delete(name)
