"""Reads for export and the REST API: a user's conversations searched or all of them, and a
conversation's whole message tree, thread and summaries, as unevaluated querysets to iterate
in chunks."""

from datetime import datetime

from django.contrib.auth.models import User
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet

from conversations.models import Attachment, Conversation, ConversationSummary, Message
from conversations.selectors.threads import thread_path_ids


def conversation_search_for_user(
    user: User, *, updated_since: datetime | None = None, q: str = ""
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


def conversations_for_export(user: User) -> QuerySet[Conversation]:
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


def conversation_images(conversation: Conversation) -> dict[int, list[Attachment]]:
    """The images of the conversation's messages by message id, oldest first: one query per
    conversation for an export (the files are read as each message is written)."""
    found: dict[int, list[Attachment]] = {}
    images = Attachment.objects.filter(message__conversation=conversation).order_by("id")
    for image in images:
        assert image.message_id is not None  # filtered on its message
        found.setdefault(image.message_id, []).append(image)
    return found
