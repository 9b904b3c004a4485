"""Reads of messages and the thread on screen: its leaf, its path from the root, backward
walks in batches, the page of messages shown and what a page is missing, the versions of a
turn (siblings), images loaded onto messages, and the reply in flight."""

from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import cast
from uuid import UUID

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet, Subquery
from django.http import Http404
from django.utils import timezone

from conversations.errors import provider_error_codes
from conversations.models import (
    NO_SIBLINGS,
    Attachment,
    Conversation,
    Message,
    MessageStatus,
    Role,
    Siblings,
)

# How many messages one backward step through a thread loads; a thread is walked newest
# first and only as far as the caller needs, so a 10,000-message history costs no more than
# the part of it that is used.
THREAD_BATCH = 200
# How many of the newest messages a conversation page shows at first.
PAGE_SIZE = 50


def message_by_idempotency_key(conversation: Conversation, key: str) -> Message | None:
    return Message.objects.filter(conversation=conversation, idempotency_key=key).first()


def message_get_in_conversation(conversation: Conversation, uuid: UUID | str) -> Message:
    return Message.objects.select_related("conversation", "chat_model__provider").get(
        conversation=conversation, uuid=uuid
    )


def message_get_for_user_or_404(user, uuid: UUID | str) -> Message:
    """A message of one of `user`'s conversations, with what its rendering needs."""
    message = (
        Message.objects.select_related("conversation", "chat_model__provider")
        .filter(uuid=uuid, conversation__owner=user)
        .first()
    )
    if message is None:
        raise Http404("No such message.")
    return message


def provider_failures(replies: QuerySet[Message]) -> QuerySet[Message]:
    """Of `replies`, those that ended on a provider's error (errors.provider_error_codes),
    newest first: the partial index message_errors_recent finds them."""
    return (
        replies.filter(role=Role.ASSISTANT, error_code__in=provider_error_codes())
        .exclude(error_code="")
        .order_by("-completed_at")
    )


def message_in_conversation_or_none(conversation: Conversation, uuid: str) -> Message | None:
    """The message `uuid` of this conversation; None for a blank, malformed or foreign id."""
    if not uuid:
        return None
    try:
        return message_get_in_conversation(conversation, uuid)
    except (Message.DoesNotExist, ValueError, ValidationError):
        return None


def newest_message_id(conversation: Conversation) -> int | None:
    return (
        Message.objects.filter(conversation=conversation)
        .order_by("-id")
        .values_list("id", flat=True)
        .first()
    )


def thread_leaf(conversation: Conversation) -> Message | None:
    """The last message of the branch on screen (read afresh: a socket's copy of the
    conversation is as old as the socket); the newest message when none is recorded."""
    current = Conversation.objects.filter(pk=conversation.pk).values("current_leaf_id")
    leaf = Message.objects.filter(conversation=conversation, pk=Subquery(current)).first()
    return leaf or Message.objects.filter(conversation=conversation).order_by("-id").first()


def branch_leaf_of(message: Message) -> Message:
    """Where the branch through `message` ends: its newest descendant (or itself).

    Descendants are newer than their ancestors, so one ascending pass over the later
    (id, parent) pairs finds the whole subtree without loading any text."""
    subtree, newest = {message.id}, message.id
    later = Message.objects.filter(conversation_id=message.conversation_id, id__gt=message.id)
    for message_id, parent_id in later.order_by("id").values_list("id", "parent_id").iterator():
        if parent_id in subtree:
            subtree.add(message_id)
            newest = message_id
    return message if newest == message.id else Message.objects.get(pk=newest)


def siblings_of(messages: list[Message]) -> dict[int, Siblings]:
    """Each message's place among its siblings, in one query for the whole list."""
    if not messages:
        return {}
    parents = {m.parent_id for m in messages}
    same_parent = Q(parent_id__in=[p for p in parents if p is not None])
    if None in parents:
        same_parent |= Q(parent__isnull=True)
    rows = (
        Message.objects.filter(same_parent, conversation_id=messages[0].conversation_id)
        .order_by("id")
        .values_list("id", "uuid", "parent_id")
    )
    groups: dict[int | None, list[tuple[int, str]]] = {}
    for message_id, uuid, parent_id in rows:
        groups.setdefault(parent_id, []).append((message_id, str(uuid)))
    return {m.id: _place(groups.get(m.parent_id, []), m.id) for m in messages}


def _place(group: list[tuple[int, str]], message_id: int) -> Siblings:
    ids = [message_id for message_id, _ in group]
    if message_id not in ids or len(ids) == 1:
        return NO_SIBLINGS
    index = ids.index(message_id)
    return Siblings(
        position=index + 1,
        count=len(ids),
        previous_uuid=group[index - 1][1] if index > 0 else "",
        next_uuid=group[index + 1][1] if index + 1 < len(ids) else "",
    )


def thread_path_ids(conversation: Conversation, *, leaf_id: int | None = None) -> list[int]:
    """Ids of the thread on screen, root first, from (id, parent) pairs alone: a window
    anywhere in a long thread is found without loading the text of the rest. `leaf_id`:
    the current leaf as the caller already read it (None: newest message), saving a query."""
    if leaf_id is None:
        leaf = thread_leaf(conversation)
        if leaf is None:
            return []
        leaf_id = leaf.id
    pairs = Message.objects.filter(conversation=conversation, id__lte=leaf_id)
    parents = dict(pairs.values_list("id", "parent_id").iterator())
    path, current = [], leaf_id
    while current is not None and current in parents:
        path.append(current)
        current = parents.pop(current)  # pop: a broken tree cannot loop
    path.reverse()
    return path


def message_uuid(message_id: int) -> UUID:
    return Message.objects.values_list("uuid", flat=True).get(pk=message_id)


def messages_by_ids(ids: list[int]) -> list[Message]:
    """These messages, in the order given, with their images."""
    found = {m.id: m for m in Message.objects.filter(id__in=ids)}
    messages = [found[i] for i in ids if i in found]
    attach_images(messages)
    return messages


def attach_images(messages: Sequence[Message]) -> None:
    """Load the user messages' images onto them as `loaded_images`, in one query.

    A plain query rather than prefetch_related, whose per-object queryset cloning cost
    more than the rest of a 10,000-message context build."""
    user_ids = [m.id for m in messages if m.role == Role.USER]
    found: dict[int | None, list[Attachment]] = {}
    if user_ids:
        for attachment in Attachment.objects.filter(message_id__in=user_ids).order_by("id"):
            found.setdefault(attachment.message_id, []).append(attachment)
    for message in messages:
        message.loaded_images = found.get(message.id, [])


def message_images(message: Message) -> list[Attachment]:
    """A user message's images: loaded by attach_images, else one query."""
    if message.role != Role.USER or message.pk is None:
        return []
    loaded = getattr(message, "loaded_images", None)
    return loaded if loaded is not None else list(message.attachments.order_by("id"))


def thread_backwards(conversation: Conversation, leaf_id: int) -> Iterator[Message]:
    """Messages on the path from `leaf_id` up to the root, newest first, loaded in batches.

    Callers stop iterating as soon as they have what they need."""
    wanted: int | None = leaf_id
    upper = leaf_id
    while wanted is not None:
        batch = list(
            Message.objects.filter(conversation=conversation, id__lte=upper).order_by("-id")[
                :THREAD_BATCH
            ]
        )
        # Images of the batch in one more query: pages and requests show or send them.
        attach_images(batch)
        if not batch:
            return
        by_id = {m.id: m for m in batch}
        while wanted is not None and wanted in by_id:
            message = by_id[wanted]
            yield message
            wanted = message.parent_id
        upper = batch[-1].id - 1
        if wanted is not None and wanted > upper:
            return  # the parent is missing: a broken tree, stop rather than loop


def thread_messages(
    conversation: Conversation, *, limit: int | None = None, before_id: int | None = None
) -> list[Message]:
    """The thread on screen, oldest first; at most `limit` of its newest messages (of those
    above `before_id`, which is on the thread, when given)."""
    start = before_id
    if start is None:
        leaf = thread_leaf(conversation)
        if leaf is None:
            return []
        start = leaf.id
    result = []
    for message in thread_backwards(conversation, start):
        if before_id is not None and message.id == before_id:
            continue
        result.append(message)
        if limit is not None and len(result) >= limit:
            break
    result.reverse()
    return result


def conversation_in_flight_reply(conversation: Conversation) -> Message | None:
    return (
        Message.objects.filter(conversation=conversation, status__in=MessageStatus.IN_FLIGHT)
        .select_related("conversation")
        .first()
    )


def reply_is_stale(reply: Message) -> bool:
    """No generator has written a heartbeat for this in-flight reply lately."""
    cutoff = timezone.now() - timedelta(seconds=settings.STREAM_STALE_AFTER)
    beat = reply.heartbeat_at or reply.created_at
    return beat < cutoff


def thread_messages_after(
    conversation: Conversation, last_uuid: str | None
) -> list[Message] | None:
    """What a page that ends at `last_uuid` is missing: that message (it may have changed)
    and every later message of the thread. Unknown or empty `last_uuid`: the recent tail.
    None when `last_uuid` is on another branch than the one now on screen."""
    last = None
    if last_uuid:
        last = Message.objects.filter(conversation=conversation, uuid=last_uuid).first()
    if last is None:
        return thread_messages(conversation, limit=PAGE_SIZE)
    newer = []
    leaf = cast(Message, thread_leaf(conversation))  # `last` is on it: the thread has a leaf
    for message in thread_backwards(conversation, leaf.id):
        newer.append(message)
        if message.id <= last.id:
            break
    if not newer or newer[-1].id != last.id:
        return None
    newer.reverse()
    return newer
