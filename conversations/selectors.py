"""Every read in chatsite. Ownership is checked here, once."""

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

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


def conversation_get_for_user(user: AbstractBaseUser, uuid: UUID | str) -> Conversation:
    """The conversation if `user` owns it; Conversation.DoesNotExist otherwise."""
    if not user.is_authenticated:
        raise Conversation.DoesNotExist
    return Conversation.objects.select_related("chat_model__provider").get(uuid=uuid, owner=user)


def conversation_fresh(conversation: Conversation) -> Conversation:
    """The conversation as the database has it now, with its model and provider."""
    return Conversation.objects.select_related("chat_model__provider").get(pk=conversation.pk)


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


def thread_leaf(conversation: Conversation) -> Message | None:
    """The newest message: the thread on screen ends there (edits and retries add newer)."""
    return Message.objects.filter(conversation=conversation).order_by("-id").first()


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
    """The thread on screen, oldest first; at most `limit` of its newest messages."""
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


def thread_messages_after(conversation: Conversation, last_uuid: str | None) -> list[Message]:
    """What a page that ends at `last_uuid` is missing: that message (it may have changed)
    and every later message of the thread. Unknown or empty `last_uuid`: the recent tail."""
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


def conversation_messages(conversation: Conversation) -> QuerySet[Message]:
    """Every message of the tree (all branches), oldest first, so parents come before
    children, each with `parent_uuid`; iterate with `.iterator()`."""
    return (
        Message.objects.filter(conversation=conversation)
        .select_related("chat_model__provider")
        .annotate(parent_uuid=F("parent__uuid"))
        .order_by("id")
    )


def conversation_thread_ids(conversation: Conversation) -> set[int]:
    """Ids of the thread on screen (root to newest message), from ids alone, so a long
    tree is walked without loading any text."""
    parents = dict(
        Message.objects.filter(conversation=conversation).values_list("id", "parent_id").iterator()
    )
    if not parents:
        return set()
    thread, current = set(), max(parents)
    while current is not None and current not in thread:
        thread.add(current)
        current = parents.get(current)
    return thread


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
