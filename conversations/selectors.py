"""Every read in chatsite. Ownership is checked here, once."""

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db.models import BigIntegerField, Count, Exists, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.expressions import RawSQL
from django.utils import timezone

from conversations import limits, usage
from conversations.models import (
    IN_FLIGHT,
    Attachment,
    ChatModel,
    Conversation,
    ConversationSummary,
    Message,
    Persona,
    Provider,
    Role,
)

# How many messages one backward step through a thread loads; a thread is walked newest
# first and only as far as the caller needs, so a 10,000-message history costs no more than
# the part of it that is used.
THREAD_BATCH = 200
# How many of the newest messages a conversation page shows at first.
PAGE_SIZE = 50


# --- Providers and models --------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    api_key: str
    base_url: str


def provider_credentials(provider: Provider) -> Credentials | None:
    """The key and endpoint from the environment; None when the provider is not enabled."""
    configured = settings.PROVIDER_CREDENTIALS.get(provider.slug)
    if configured is None:
        prefix = provider.slug.upper().replace("-", "_")
        configured = {
            "api_key": os.environ.get(f"{prefix}_API_KEY", ""),
            "base_url": os.environ.get(f"{prefix}_BASE_URL", ""),
        }
    api_key, base_url = configured["api_key"], configured["base_url"]
    if provider.slug == "local":
        # A local server usually needs no key; setting its URL is what enables it.
        return Credentials(api_key or "not-needed", base_url) if base_url else None
    return Credentials(api_key, base_url or provider.base_url) if api_key else None


def enabled_providers() -> list[Provider]:
    return [p for p in Provider.objects.all() if provider_credentials(p) is not None]


def chat_models_available() -> list[ChatModel]:
    enabled = [p.pk for p in enabled_providers()]
    return list(
        ChatModel.objects.filter(provider_id__in=enabled, is_active=True).select_related("provider")
    )


def default_chat_model() -> ChatModel | None:
    available = chat_models_available()
    return available[0] if available else None


def chat_model_get_available(pk: int | str | None) -> ChatModel | None:
    return next((m for m in chat_models_available() if str(m.pk) == str(pk)), None)


# --- Personas --------------------------------------------------------------------------


def persona_list_for_user(user: AbstractBaseUser) -> list[Persona]:
    return list(Persona.objects.filter(owner=user))


def persona_get_for_user(user: AbstractBaseUser, pk: int | str | None) -> Persona | None:
    """One of the user's own personas; None for anyone else's or none at all."""
    if not pk:
        return None
    return Persona.objects.filter(owner=user, pk=pk).first()


# --- Conversations ---------------------------------------------------------------------


def conversation_list_for_user(user: AbstractBaseUser, *, limit: int = 200) -> list[Conversation]:
    return list(
        Conversation.objects.filter(owner=user, archived=False).order_by("-updated_at")[:limit]
    )


def conversation_list_archived_for_user(
    user: AbstractBaseUser, *, limit: int = 200
) -> list[Conversation]:
    """The user's archived conversations, most recently active first."""
    return list(
        Conversation.objects.filter(owner=user, archived=True).order_by("-updated_at")[:limit]
    )


# The sidebar's date groups, in the order shown; the template gives each its label.
DATE_GROUPS = ("today", "yesterday", "previous_7_days", "older")


@dataclass(frozen=True)
class ConversationGroup:
    key: str  # one of DATE_GROUPS
    conversations: list[Conversation]


def _date_group(day, today) -> str:
    days_ago = (today - day).days
    if days_ago <= 0:  # today, or a clock a little ahead
        return "today"
    if days_ago == 1:
        return "yesterday"
    return "previous_7_days" if days_ago <= 7 else "older"


def conversation_groups(
    conversations: list[Conversation], *, now: datetime | None = None
) -> list[ConversationGroup]:
    """`conversations` (as conversation_list_for_user orders them) under Today, Yesterday,
    Previous 7 days and Older, by the calendar day of `updated_at` in the current time zone
    (TIME_ZONE, or whichever zone the request activated). Empty groups are left out."""
    today = timezone.localdate(now or timezone.now())
    grouped: dict[str, list[Conversation]] = {key: [] for key in DATE_GROUPS}
    for conversation in conversations:
        day = timezone.localdate(conversation.updated_at)
        grouped[_date_group(day, today)].append(conversation)
    return [ConversationGroup(key, items) for key, items in grouped.items() if items]


def conversation_get_for_user(user: AbstractBaseUser, uuid: UUID | str) -> Conversation:
    """The conversation if `user` owns it; Conversation.DoesNotExist otherwise."""
    if not user.is_authenticated:
        raise Conversation.DoesNotExist
    return Conversation.objects.select_related("chat_model__provider").get(uuid=uuid, owner=user)


def conversation_fresh(conversation: Conversation) -> Conversation:
    """The conversation as the database has it now, with its model and provider."""
    return Conversation.objects.select_related("chat_model__provider").get(pk=conversation.pk)


# Hand-written, like the other checks of a send: as an ORM subquery it cost a millisecond
# of CPU to compile on every send.
_EARLIER_SEND = (
    f"SELECT m.id FROM {Message._meta.db_table} AS m"
    f" WHERE m.conversation_id = {Conversation._meta.db_table}.id"
    " AND m.idempotency_key = %s LIMIT 1"
)


def conversation_for_send(
    conversation: Conversation, *, idempotency_key: str | None
) -> Conversation:
    """conversation_fresh plus, in the same query, everything message_send checks: the
    owner's budget use and replies in flight, and the message `idempotency_key` already
    sent (`earlier_send_id`, for that key only: `earlier_send_key`)."""
    fresh = Conversation.objects.select_related("chat_model__provider")
    fresh = limits.with_replies_in_flight(usage.with_budget_use(fresh))
    if idempotency_key:
        earlier = RawSQL(_EARLIER_SEND, [idempotency_key], output_field=BigIntegerField())
        fresh = fresh.annotate(earlier_send_id=earlier)
    current = fresh.get(pk=conversation.pk)
    current.earlier_send_key = idempotency_key
    return current


def attachment_get_for_user(user: AbstractBaseUser, uuid: UUID | str) -> Attachment:
    """One of the user's own images; anyone else's raises DoesNotExist like a missing one."""
    return Attachment.objects.get(owner_id=user.pk, uuid=uuid)


# --- Messages and threads --------------------------------------------------------------


def message_by_idempotency_key(conversation: Conversation, key: str) -> Message | None:
    return Message.objects.filter(conversation=conversation, idempotency_key=key).first()


def message_get_in_conversation(conversation: Conversation, uuid: UUID | str) -> Message:
    return Message.objects.select_related("conversation", "chat_model__provider").get(
        conversation=conversation, uuid=uuid
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


@dataclass(frozen=True)
class Siblings:
    """A message among the versions of its turn (edits of a user message, regenerations
    of a reply): shown as "position / count" with links to its neighbours."""

    position: int = 1
    count: int = 1
    previous_uuid: str = ""
    next_uuid: str = ""


NO_SIBLINGS = Siblings()


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


def attach_images(messages: list[Message]) -> None:
    """Load the user messages' images onto them as `loaded_images`, in one query.

    A plain query rather than prefetch_related, whose per-object queryset cloning cost
    more than the rest of a 10,000-message context build."""
    user_ids = [m.id for m in messages if m.role == Role.USER]
    found: dict[int, list[Attachment]] = {}
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
    if before_id is None:
        leaf = thread_leaf(conversation)
        if leaf is None:
            return []
    start = leaf.id if before_id is None else before_id
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
        Message.objects.filter(conversation=conversation, status__in=IN_FLIGHT)
        .select_related("conversation")
        .first()
    )


def dropped_turns_of_latest_reply(thread: list[Message]) -> int:
    """How many turns the newest reply's request left out for lack of room."""
    for message in reversed(thread):
        if message.role == Role.ASSISTANT and message.context:
            return int(message.context.get("dropped_turns") or 0)
    return 0


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
    leaf = thread_leaf(conversation)
    for message in thread_backwards(conversation, leaf.id):
        newer.append(message)
        if message.id <= last.id:
            break
    if not newer or newer[-1].id != last.id:
        return None
    newer.reverse()
    return newer


# --- Export and the REST API -----------------------------------------------------------


def conversation_search_for_user(
    user: AbstractBaseUser, *, updated_since: datetime | None = None, q: str = ""
) -> QuerySet[Conversation]:
    """Every conversation of `user` (archived too), most recently active first, unevaluated
    so the caller can paginate. `q` matches the title or any message's text."""
    conversations = Conversation.objects.filter(owner=user).select_related("chat_model__provider")
    if updated_since is not None:
        conversations = conversations.filter(updated_at__gte=updated_since)
    if q:
        in_messages = Message.objects.filter(conversation=OuterRef("pk"), content__icontains=q)
        conversations = conversations.filter(Q(title__icontains=q) | Exists(in_messages))
    return conversations.annotate(message_count=Count("messages")).order_by("-updated_at", "-id")


def conversations_for_export(user: AbstractBaseUser) -> QuerySet[Conversation]:
    """All of a user's conversations in creation order; iterate with `.iterator()`."""
    return (
        Conversation.objects.filter(owner=user)
        .select_related("chat_model__provider")
        .order_by("id")
    )


def conversation_messages(
    conversation: Conversation, *, with_models: bool = True
) -> QuerySet[Message]:
    """Every message of the tree (all branches), oldest first, so parents come before
    children, each with `parent_uuid`; iterate with `.iterator()`. Without `with_models`
    the chat model is not joined (an export names it from a few cached rows instead of
    building two more objects per message)."""
    messages = Message.objects.filter(conversation=conversation)
    if with_models:
        messages = messages.select_related("chat_model__provider")
    return messages.annotate(parent_uuid=F("parent__uuid")).order_by("id")


def chat_model_with_provider(pk: int) -> ChatModel | None:
    return ChatModel.objects.select_related("provider").filter(pk=pk).first()


def conversation_thread_ids(conversation: Conversation) -> set[int]:
    """Ids of the thread on screen (root to its current leaf). The conversation as loaded
    for export carries `current_leaf_id`: one query per conversation."""
    if conversation.current_leaf_id is None:
        return set(thread_path_ids(conversation))
    return set(thread_path_ids(conversation, leaf_id=conversation.current_leaf_id))


def conversation_summaries(conversation: Conversation) -> QuerySet[ConversationSummary]:
    return (
        ConversationSummary.objects.filter(conversation=conversation)
        .select_related("covers_through", "previous__covers_through")
        .order_by("id")
    )


def chat_model_by_name(provider_slug: str, name: str) -> ChatModel | None:
    """The catalogue row for provider/name, active or not; None when not in the catalogue."""
    if not provider_slug or not name:
        return None
    return ChatModel.objects.filter(provider__slug=provider_slug, name=name).first()
