"""Continuing a reply that its length limit cut off: the same reply, asked to go on.

The reply goes back to PENDING with its text kept; the generator (live.run) claims it as it
claims any reply, streams the continuation into it and finishes it with one more usage
record (reply_finish adds the call's tokens and time to the reply's).
"""

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from conversations.errors import ReplyInFlight, ValidationFailed
from conversations.models import Conversation, Message, MessageStatus, Role
from conversations.services.requirements import (
    require_budget,
    require_model,
    require_send_allowance,
)
from conversations.services.sidebar import conversation_announce_if_moving_up

CUT_BY_LENGTH = "length"
NOT_CONTINUABLE = _("Only the latest reply, cut off by its length limit, can be continued.")


def reply_continuable(reply: Message) -> bool:
    """A finished reply the provider cut at its output limit, at the end of the branch on
    screen (continuing an earlier one would leave the replies after it answering less)."""
    return (
        reply.role == Role.ASSISTANT
        and reply.status == MessageStatus.TRUNCATED
        and reply.finish_reason == CUT_BY_LENGTH
        and reply.conversation.current_leaf_id == reply.id
    )


def reply_continue(*, reply: Message) -> Message:
    """Make a reply cut off by its length limit pending again, its text kept, for the
    generator to continue. Refused like a send (budget, rate limits, one reply in flight)."""
    if not reply_continuable(reply):
        raise ValidationFailed(NOT_CONTINUABLE)
    conversation = reply.conversation
    require_model(conversation)
    require_budget(conversation)
    require_send_allowance(conversation)
    # The heartbeat is set now: the sweeper takes a pending reply created long ago with no
    # heartbeat for one whose generator died.
    now = timezone.now()
    try:
        with transaction.atomic():
            claimed = Message.objects.filter(
                pk=reply.pk, status=MessageStatus.TRUNCATED, finish_reason=CUT_BY_LENGTH
            ).update(status=MessageStatus.PENDING, heartbeat_at=now, error_code="", error_text="")
            if claimed == 1:  # the sidebar orders by last activity
                conversation_announce_if_moving_up(conversation)
                Conversation.objects.filter(pk=conversation.pk).update(updated_at=timezone.now())
    except IntegrityError:  # the partial unique constraint: a reply is in flight already
        raise ReplyInFlight() from None
    if claimed != 1:
        raise ValidationFailed(NOT_CONTINUABLE)  # continued (or changed) meanwhile
    reply.status, reply.heartbeat_at = MessageStatus.PENDING, now
    reply.error_code = reply.error_text = ""
    return reply


# A continued reply shows its calls' sums; its first token is its first call's.
_SUMMED = (
    *("prompt_tokens", "completion_tokens", "reasoning_tokens", "cached_tokens"),
    *("duration_ms", "reasoning_ms"),
)


def added_to_earlier_calls(reply_id: int, final: dict[str, Any]) -> dict[str, Any]:
    """A continuation's final fields (reply_finish's) with the reply's earlier calls
    counted in: tokens and times summed, the first token's time kept."""
    earlier = Message.objects.values(*_SUMMED, "time_to_first_token_ms").get(pk=reply_id)
    summed = {name: (earlier[name] or 0) + (final[name] or 0) for name in _SUMMED}
    first = earlier["time_to_first_token_ms"]
    return summed | {
        "time_to_first_token_ms": final["time_to_first_token_ms"] if first is None else first
    }
