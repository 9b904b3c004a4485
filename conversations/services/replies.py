"""Sending messages and the lifecycle of a reply.

A reply moves PENDING -> STREAMING -> one final status. Each move is a conditional update on
the current status, so a second claim (a duplicate task, a late stop) changes nothing.
"""

import uuid
from datetime import timedelta
from typing import Any, NamedTuple, cast

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _

from conversations import limits, selectors, usage
from conversations.errors import (
    ReplyInFlight,
    TooManyReplies,
    ValidationFailed,
)
from conversations.models import (
    Attachment,
    ChatModel,
    Conversation,
    Message,
    MessageStatus,
    Role,
    UsageKind,
)
from conversations.services.continuations import added_to_earlier_calls
from conversations.services.fits import require_fits_window
from conversations.services.ledger import (
    CallOutcome,
    call_refused,
    usage_record_create,
    usage_records_for_retries,
)
from conversations.services.requirements import (
    require_budget,
    require_model,
    require_send_allowance,
)
from conversations.services.sidebar import conversation_announce_if_moving_up
from conversations.storable import storable_text

# Constants, in English; each raise words them in the active language.
NO_VISION = gettext_noop(
    "This model cannot see images. Choose a vision model (e.g. qwen3-vl-plus, gpt-4o-mini) "
    "or remove the image."
)
NOT_YOURS = gettext_noop("That image is not yours or was already sent.")


def validated_content(content: str, *, has_images: bool = False) -> str:
    """The message text, storable; it may be empty when images carry the message."""
    content = storable_text(content or "").strip()
    if not content and not has_images:
        raise ValidationFailed(_("Type a message first."))
    if len(content) > settings.MESSAGE_MAX_CHARS:
        raise ValidationFailed(
            gettext("That message is too long (%(length)s characters; the limit is %(limit)s).")
            % {"length": f"{len(content):,}", "limit": f"{settings.MESSAGE_MAX_CHARS:,}"}
        )
    return content


def _validated_key(idempotency_key: str | None) -> str | None:
    key = (idempotency_key or "").strip() or None
    if key is not None and len(key) > 64:
        raise ValidationFailed(_("The idempotency key is longer than 64 characters."))
    return key


def _reply_for(user_message: Message) -> Message | None:
    return user_message.children.filter(role=Role.ASSISTANT).order_by("-id").first()


def pending_reply_create(*, conversation: Conversation, parent: Message) -> Message:
    """A reply waiting to be generated, inside the caller's transaction, within the owner's
    MAX_REPLIES_IN_FLIGHT: the replies in flight are counted under a per-owner advisory
    lock, so simultaneous sends are counted one after another, never together."""
    assert transaction.get_connection().in_atomic_block, "the lock lasts the transaction"
    limits.lock_owner_replies(conversation.owner_id)
    if limits.replies_in_flight_now(conversation.owner_id) >= settings.MAX_REPLIES_IN_FLIGHT:
        raise TooManyReplies()
    chat_model = conversation.chat_model
    return Message.objects.create(
        conversation=conversation,
        parent=parent,
        role=Role.ASSISTANT,
        status=MessageStatus.PENDING,
        chat_model=chat_model,
        model_name=chat_model.name if chat_model else "",
    )


def _earlier_send(conversation: Conversation, key: str | None) -> Message | None:
    """The message this idempotency key already sent, if any. selectors.conversation_for_send
    looks it up in the query that loads the conversation; otherwise it is read here."""
    if not key:
        return None
    if getattr(conversation, "earlier_send_key", None) == key:
        # Annotated by selectors.conversation_for_send, with earlier_send_key.
        earlier_id = conversation.earlier_send_id  # type: ignore[attr-defined]
        return Message.objects.get(pk=earlier_id) if earlier_id is not None else None
    return selectors.message_by_idempotency_key(conversation, key)


def _thread_end(conversation: Conversation) -> int | None:
    """Where a new message attaches: the end of the branch on screen. A conversation read
    by selectors.conversation_for_send carries its current leaf as the database has it."""
    if hasattr(conversation, "earlier_send_key"):
        return conversation.current_leaf_id or selectors.newest_message_id(conversation)
    leaf = selectors.thread_leaf(conversation)
    return leaf.id if leaf else None


def _provisional_title(text: str) -> str:
    first_line = text.strip().splitlines()[0] if text.strip() else ""
    return first_line if len(first_line) <= 60 else first_line[:59].rstrip() + "…"


def touch_conversation(
    conversation: Conversation, *, leaf: Message, first_message: str = "", branched: bool = False
) -> None:
    """Bump last activity and move the branch on screen to `leaf`; an untitled conversation
    is named after its first message until a better title is generated or the user names it.
    `branched`: `leaf` is a new version of a turn (an edit, a regeneration)."""
    conversation_announce_if_moving_up(conversation)  # read before the bump below
    changes: dict = {"updated_at": timezone.now(), "current_leaf": leaf}
    conversation.current_leaf = leaf
    if branched:
        conversation.has_branches = changes["has_branches"] = True
    if first_message and not conversation.title:
        conversation.title = changes["title"] = _provisional_title(first_message)
    Conversation.objects.filter(pk=conversation.pk).update(**changes)


class SentMessage(NamedTuple):
    user_message: Message
    reply: Message | None
    # False when the idempotency key had been seen: nothing new was written.
    created: bool


def _require_vision(conversation: Conversation, attachment_ids: list[str]) -> None:
    chat_model = cast(ChatModel, conversation.chat_model)  # _require_model ran first
    if attachment_ids and not chat_model.supports_vision:
        raise ValidationFailed(gettext(NO_VISION))


def _attach(conversation: Conversation, message: Message, attachment_ids: list[str]) -> None:
    """Give the owner's unsent uploads to `message`; any other id fails the whole send.

    Runs inside the send's transaction, so a refused id leaves no message behind; the
    conditional update (message still empty) means an image joins one message only.
    """
    wanted = set(attachment_ids)
    claimed = Attachment.objects.filter(
        owner_id=conversation.owner_id, uuid__in=wanted, message__isnull=True
    ).update(message=message)
    if claimed != len(wanted):
        raise ValidationFailed(gettext(NOT_YOURS))


def _valid_uuids(ids: list[str]) -> list[str]:
    try:
        return [str(uuid.UUID(str(value))) for value in ids]
    except ValueError:
        raise ValidationFailed(gettext(NOT_YOURS)) from None


def message_send(
    *,
    conversation: Conversation,
    content: str,
    idempotency_key: str | None = None,
    attachment_ids: list[str] | None = None,
) -> SentMessage:
    """Save the user's message (with its images) and a pending reply to it, all or nothing.

    Sending again with the same idempotency key returns the first pair unchanged.
    """
    attachment_ids = _valid_uuids(attachment_ids or [])
    content = validated_content(content, has_images=bool(attachment_ids))
    key = _validated_key(idempotency_key)
    require_model(conversation)
    require_fits_window(conversation, content)
    if earlier := _earlier_send(conversation, key):
        return SentMessage(earlier, _reply_for(earlier), created=False)
    _require_vision(conversation, attachment_ids)
    require_budget(conversation)
    require_send_allowance(conversation)
    try:
        with transaction.atomic():
            user_message = Message.objects.create(
                conversation=conversation,
                parent_id=_thread_end(conversation),
                role=Role.USER,
                content=content,
                idempotency_key=key,
            )
            if attachment_ids:
                _attach(conversation, user_message, attachment_ids)
            reply = pending_reply_create(conversation=conversation, parent=user_message)
            touch_conversation(conversation, leaf=reply, first_message=content)
    except IntegrityError:
        # A concurrent send with the same key won the race: answer with its messages.
        if key and (earlier := selectors.message_by_idempotency_key(conversation, key)):
            return SentMessage(earlier, _reply_for(earlier), created=False)
        raise ReplyInFlight() from None
    # Both continue the leaf of the branch on screen, which has no children yet.
    user_message.siblings = reply.siblings = selectors.NO_SIBLINGS
    return SentMessage(user_message, reply, created=True)


def reply_retry(*, reply: Message) -> Message:
    """Answer the same user message again; the failed reply stays as an earlier sibling."""
    if reply.role != Role.ASSISTANT or reply.is_in_flight or reply.parent_id is None:
        raise ValidationFailed(_("Only a finished reply can be retried."))
    conversation = reply.conversation
    require_model(conversation)
    require_budget(conversation)
    require_send_allowance(conversation)
    try:
        with transaction.atomic():
            parent = cast(Message, reply.parent)  # parent_id is set (checked above)
            new_reply = pending_reply_create(conversation=conversation, parent=parent)
            touch_conversation(conversation, leaf=new_reply, branched=True)
    except IntegrityError:
        raise ReplyInFlight() from None
    return new_reply


def reply_start(*, reply_id: int, context: dict) -> bool:
    """Claim a pending reply for generation; False if someone else already did."""
    claimed = Message.objects.filter(pk=reply_id, status=MessageStatus.PENDING).update(
        status=MessageStatus.STREAMING, heartbeat_at=timezone.now(), context=context
    )
    return claimed == 1


# The error code of a reply another process's sweeper ended for want of a heartbeat. Its
# generator may still be alive (a stall, not a crash): it keeps saving the text, and its
# final state replaces the sweep's. The sweep wrote no usage record, so none is doubled.
SWEPT = "swept"
_FINISHABLE = Q(status__in=MessageStatus.IN_FLIGHT) | Q(
    status=MessageStatus.INTERRUPTED, error_code=SWEPT
)


_CALL_TOKENS = ("prompt_tokens", "completion_tokens", "reasoning_tokens", "cached_tokens")


@transaction.atomic
def reply_finish(*, reply_id: int, outcome: CallOutcome, reply: Message | None = None) -> bool:
    """Give an in-flight reply its final state and write its usage record, once.

    A `reply` instance passed in (with conversation and chat model loaded) receives the same
    final fields, so the caller can render it without reading it back.
    """
    final = {
        "status": outcome.status,
        "content": outcome.content,
        "reasoning": outcome.reasoning,
        "finish_reason": outcome.finish_reason[:40],
        "error_code": outcome.error_code[:40],
        "error_text": outcome.error_text,
        "prompt_tokens": outcome.prompt_tokens,
        "completion_tokens": outcome.completion_tokens,
        "reasoning_tokens": outcome.reasoning_tokens,
        "cached_tokens": outcome.cached_tokens,
        "time_to_first_token_ms": outcome.time_to_first_token_ms,
        "duration_ms": outcome.duration_ms,
        "reasoning_ms": outcome.reasoning_ms,
        "completed_at": timezone.now(),
        "heartbeat_at": None,
    }
    if outcome.called_upstream and call_refused(outcome):
        # The ledger records a refused call at zero tokens (our estimate of the prompt is
        # not billed): the reply's footer adds none either, to a continued reply's sums.
        final |= dict.fromkeys(_CALL_TOKENS, 0)
    if outcome.continues:
        final |= added_to_earlier_calls(reply_id, final)
    if Message.objects.filter(_FINISHABLE, pk=reply_id).update(**final) != 1:
        return False
    if reply is not None:
        for name, value in final.items():
            setattr(reply, name, value)
        if not reply.context:
            # reply_start wrote the request's context by id; rendering needs it (JSON mode).
            reply.context = Message.objects.values_list("context", flat=True).get(pk=reply_id)
    if outcome.called_upstream:
        reply = reply or Message.objects.select_related("conversation", "chat_model__provider").get(
            pk=reply_id
        )
        call: dict[str, Any] = {
            "user_id": reply.conversation.owner_id,
            "conversation": reply.conversation,
            "message": reply,
            "chat_model": reply.chat_model,
            "model_name": reply.model_name,
            "kind": UsageKind.CHAT,
        }
        usage_records_for_retries(
            count=outcome.upstream_attempts - 1, started_at=outcome.started_at, **call
        )
        record = usage_record_create(outcome=outcome, **call)
        # The reply's cost is this record's (retried attempts cost nothing): renderers of
        # the final reply read it here instead of summing the ledger again; a continued
        # reply's is every call's.
        reply.recorded_cost = (record.cost, record.currency)
        if outcome.continues:
            reply.recorded_cost = usage.cost_by_message([reply.id])[reply.id]
    return True


# Saved in English like every error_text, and translated when shown (errors.translated).
INTERRUPTED_TEXT = gettext_noop(
    "The reply was interrupted because the server stopped generating it."
)


def _end_orphans(replies, *, status: str, code: str = "interrupted") -> list[Message]:
    """Give in-flight replies that no generator owns a final status, keeping their text."""
    ended = []
    for reply in replies:
        changes = {"status": status, "completed_at": timezone.now(), "heartbeat_at": None}
        if status == MessageStatus.INTERRUPTED:
            changes |= {"error_code": code, "error_text": INTERRUPTED_TEXT}
        if (
            Message.objects.filter(pk=reply.pk, status__in=MessageStatus.IN_FLIGHT).update(
                **changes
            )
            == 1
        ):
            reply.refresh_from_db()
            ended.append(reply)
    return ended


def reply_interrupt_stale(
    *, everything: bool = False, live_ids: frozenset[int] = frozenset()
) -> list[Message]:
    """Interrupt replies whose generator stopped heart-beating (a restart, a crash).

    `everything` is for a process that knows it is the only one: nothing in flight is live
    except `live_ids`, the replies it is generating itself.
    """
    in_flight = (
        Message.objects.filter(status__in=MessageStatus.IN_FLIGHT)
        .exclude(pk__in=live_ids)
        .select_related("conversation")
    )
    if not everything:
        cutoff = timezone.now() - timedelta(seconds=settings.STREAM_STALE_AFTER)
        in_flight = in_flight.filter(Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True))
        in_flight = in_flight.filter(created_at__lt=cutoff)
    return _end_orphans(list(in_flight), status=MessageStatus.INTERRUPTED, code=SWEPT)


def reply_interrupt_orphan(*, reply_id: int) -> bool:
    """Interrupt one in-flight reply whose generator failed."""
    replies = Message.objects.filter(pk=reply_id)
    return bool(_end_orphans(replies, status=MessageStatus.INTERRUPTED))


def reply_cancel_orphan(*, reply: Message) -> Message | None:
    """A stop for a reply that no live generator owns: end it as cancelled, text kept."""
    ended = _end_orphans([reply], status=MessageStatus.CANCELLED)
    return ended[0] if ended else None
