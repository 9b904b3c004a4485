"""chatsite's own exceptions, shown to users as plain sentences.

Messages are lazy: they read in the language active where they are shown. A reply's error is
saved as the English sentence (replies are generated outside any request) and translated
when shown, by `translated`.
"""

import re

from django.utils.functional import Promise
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _


class ChatError(Exception):
    """An error whose message is fit to show the user as it is."""

    code = "error"
    default_message = _("Something went wrong.")

    def __init__(self, message: str | Promise = "") -> None:
        super().__init__(message or self.default_message)

    @property
    def message(self) -> str:
        return str(self)


class ValidationFailed(ChatError):
    code = "invalid"
    default_message = _("That input is not valid.")


class ReplyInFlight(ChatError):
    code = "reply_in_flight"
    default_message = _("A reply is still being written. Stop it or wait for it to finish.")


class ProviderError(ChatError):
    """A failed upstream call, with a sentence for the user in place of the reply."""

    code = "provider_error"
    default_message = _("The provider could not answer. Try again.")


class ProviderAuthFailed(ProviderError):
    code = "auth_failed"
    default_message = _("The provider refused the API key (invalid or without access).")


class ProviderRateLimited(ProviderError):
    code = "rate_limited"
    default_message = _("The provider is rate limiting requests. Wait a moment and retry.")


class ProviderOutOfCredit(ProviderError):
    """The provider account has no credit left: never retried, and listed for admins."""

    code = "out_of_credit"
    default_message = _("The provider account is out of credit — tell the administrator.")


class ProviderUnavailable(ProviderError):
    code = "provider_unavailable"
    default_message = _("The provider had a server error. Try again shortly.")


class ProviderTimeout(ProviderError):
    code = "timeout"
    default_message = _("The provider stopped responding (timed out).")


class ProviderConnectionLost(ProviderError):
    code = "connection_lost"
    default_message = _("The connection to the provider dropped mid-reply.")


class ContextTooLong(ProviderError):
    code = "context_too_long"
    default_message = _("The conversation is too long for this model's context window.")


class ProviderRejected(ProviderError):
    code = "rejected"
    default_message = _("The provider refused the request.")


class StreamOptionsUnsupported(ProviderRejected):
    """The endpoint rejects stream_options; retried once without it, never shown."""

    code = "stream_options_unsupported"


class ProviderNotConfigured(ChatError):
    code = "not_configured"
    default_message = _("This model's provider has no API key configured on the server.")


class BudgetExceeded(ChatError):
    """This month's usage reached the user's budget: nothing is sent until it is raised."""

    code = "budget_exceeded"
    default_message = _(
        "You have used all of this month's budget, so the message was not sent. "
        "Ask an administrator to raise your limit."
    )


class SendRateLimited(ChatError):
    code = "send_rate_limited"
    default_message = _("You are sending messages too quickly. Wait a minute and send again.")


class TooManyReplies(ChatError):
    code = "too_many_replies"
    default_message = _(
        "You already have the most replies being written at once. "
        "Wait for one to finish or stop one."
    )


# Saved sentences that carry a detail; `translated` recognises them and keeps the detail.
UNREACHABLE = gettext_noop("Could not reach the provider (%(detail)s).")
REFUSED_WITH_DETAIL = gettext_noop("The provider refused the request: %(detail)s")
CUT_AT_REPLY_LIMIT = gettext_noop(
    "Cut off at %(detail)s characters, the longest reply this server keeps."
)
_WITH_DETAIL = [
    (template, re.compile(re.escape(template).replace(re.escape("%(detail)s"), "(.*)"), re.S))
    for template in (UNREACHABLE, REFUSED_WITH_DETAIL, CUT_AT_REPLY_LIMIT)
]


class ReplyTooLong(ChatError):
    """The reply reached REPLY_MAX_CHARS: kept as far as that, marked truncated."""

    code = "reply_too_long"

    def __init__(self, limit: int) -> None:
        super().__init__(CUT_AT_REPLY_LIMIT % {"detail": f"{limit:,}"})


def translated(saved: str) -> str:
    """A sentence saved in English (a reply's error_text), in the active language when the
    catalogue has it; anything else (a provider's own words) as it is."""
    if not saved:
        return saved
    for template, pattern in _WITH_DETAIL:
        if match := pattern.fullmatch(saved):
            return gettext(template) % {"detail": match[1]}
    return gettext(saved)


def provider_error_codes() -> list[str]:
    """The codes of replies that ended on a provider's error or a provider left
    unconfigured (what an administrator should hear about), including the empty reply."""
    codes, pending = {ProviderNotConfigured.code, "empty_reply"}, [ProviderError]
    while pending:
        error = pending.pop()
        codes.add(error.code)
        pending.extend(error.__subclasses__())
    codes.discard(StreamOptionsUnsupported.code)  # retried without the option, never shown
    return sorted(codes)
