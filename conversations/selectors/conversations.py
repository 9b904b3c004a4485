"""Reads of what a user owns: personas, conversations (listed, grouped by date for the
sidebar, loaded for a page or for a send) and image attachments. The reads that take a user
check ownership here, so that other users' objects answer as missing ones do."""

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db.models import BigIntegerField
from django.db.models.expressions import RawSQL
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext

from conversations import limits, usage
from conversations.models import Attachment, Conversation, Message, Persona

# --- Personas --------------------------------------------------------------------------


def persona_list_for_user(user: User) -> list[Persona]:
    return list(Persona.objects.filter(owner=user))


def persona_get_for_user(user: User, pk: int | str | None) -> Persona | None:
    """One of the user's own personas; None for anyone else's or none at all."""
    if not pk:
        return None
    return Persona.objects.filter(owner=user, pk=pk).first()


# --- Conversations ---------------------------------------------------------------------


def conversation_list_for_user(user: User, *, limit: int = 200) -> list[Conversation]:
    return list(
        Conversation.objects.filter(owner=user, archived=False).order_by("-updated_at")[:limit]
    )


def conversation_today_has_another(user: User, conversation: Conversation) -> bool:
    """Another listed chat of the user was active today (the sidebar has a Today group
    besides `conversation`)."""
    today = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    others = Conversation.objects.filter(owner=user, archived=False, updated_at__gte=today)
    return others.exclude(pk=conversation.pk).exists()


def chat_model_last_used_id(user: User) -> int | None:
    """The model of the user's most recently active conversation: where a new chat starts."""
    return (
        Conversation.objects.filter(owner=user, chat_model__isnull=False)
        .order_by("-updated_at")
        .values_list("chat_model_id", flat=True)
        .first()
    )


def conversation_list_archived_for_user(user: User, *, limit: int = 200) -> list[Conversation]:
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


def conversation_get_for_user_or_none(user: User, uuid: UUID | str) -> Conversation | None:
    """The conversation if `user` owns it; None for someone else's, a missing one or a
    malformed id (the one ownership check: the socket, the sidebar and the 404 below)."""
    if not user.is_authenticated:
        return None
    found = Conversation.objects.select_related("chat_model__provider")
    try:
        return found.get(uuid=uuid, owner=user)
    except (Conversation.DoesNotExist, ValueError, ValidationError):
        return None


def conversation_get_for_user_or_404(user: User, uuid: UUID | str) -> Conversation:
    """The conversation if `user` owns it; Http404 otherwise (a page, a view, the API), the
    same answer whether it is someone else's or does not exist."""
    conversation = conversation_get_for_user_or_none(user, uuid)
    if conversation is None:
        raise Http404(gettext("No such conversation."))
    return conversation


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
    current.earlier_send_key = idempotency_key  # type: ignore[attr-defined]
    return current


def attachments_unsent_for_user(user: User, uuids: list[str]) -> list[Attachment]:
    """The user's uploads among `uuids` that no message has claimed yet, in upload order
    (the chips of a refused first message, put back in the composer)."""
    valid = []
    for value in uuids:
        try:
            valid.append(UUID(str(value)))
        except ValueError:
            continue
    if not valid:
        return []
    return list(Attachment.objects.filter(owner_id=user.pk, uuid__in=valid, message__isnull=True))


def attachment_get_for_user(user: User, uuid: UUID | str) -> Attachment:
    """One of the user's own images; anyone else's raises DoesNotExist like a missing one."""
    return Attachment.objects.get(owner_id=user.pk, uuid=uuid)
