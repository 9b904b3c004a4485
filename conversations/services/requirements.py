"""What every new upstream call a user asks for requires: a model, budget left this month,
and the per-user abuse limits (a send, a regeneration, a continuation alike)."""

from django.conf import settings
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from conversations import limits, usage
from conversations.errors import BudgetExceeded, SendRateLimited, TooManyReplies, ValidationFailed
from conversations.models import Conversation


def require_model(conversation: Conversation) -> None:
    if conversation.chat_model is None:
        raise ValidationFailed(_("Choose a model for this conversation first."))


def require_budget(conversation: Conversation) -> None:
    """Refuse new upstream calls once the owner has used this month's budget."""
    status = usage.budget_status_of_owner(conversation)
    if status.is_over:
        raise BudgetExceeded(
            gettext(
                "You have used this month's budget (%(used)s), so the message was not sent. "
                "Ask an administrator to raise your limit."
            )
            % {"used": status.summary}
        )


def require_send_allowance(conversation: Conversation) -> None:
    """Per-user abuse limits: sends per minute, and replies in flight across conversations.

    The in-flight count here is the one read with the conversation, to refuse early; the
    cap itself holds in pending_reply_create, under a lock.
    """
    if limits.replies_in_flight(conversation) >= settings.MAX_REPLIES_IN_FLIGHT:
        raise TooManyReplies()
    if not limits.send_allowed(conversation.owner_id):
        raise SendRateLimited()
