"""chatsite's own exceptions, shown to users as plain sentences."""


class ChatError(Exception):
    """An error whose message is fit to show the user as it is."""

    code = "error"
    default_message = "Something went wrong."

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.default_message)

    @property
    def message(self) -> str:
        return str(self)


class ValidationFailed(ChatError):
    code = "invalid"
    default_message = "That input is not valid."


class ReplyInFlight(ChatError):
    code = "reply_in_flight"
    default_message = "A reply is still being written. Stop it or wait for it to finish."


class ProviderError(ChatError):
    """A failed upstream call, with a sentence for the user in place of the reply."""

    code = "provider_error"
    default_message = "The provider could not answer. Try again."


class ProviderAuthFailed(ProviderError):
    code = "auth_failed"
    default_message = "The provider refused the API key (invalid or without access)."


class ProviderRateLimited(ProviderError):
    code = "rate_limited"
    default_message = "The provider is rate limiting requests. Wait a moment and retry."


class ProviderUnavailable(ProviderError):
    code = "provider_unavailable"
    default_message = "The provider had a server error. Try again shortly."


class ProviderTimeout(ProviderError):
    code = "timeout"
    default_message = "The provider stopped responding (timed out)."


class ProviderConnectionLost(ProviderError):
    code = "connection_lost"
    default_message = "The connection to the provider dropped mid-reply."


class ContextTooLong(ProviderError):
    code = "context_too_long"
    default_message = "The conversation is too long for this model's context window."


class ProviderRejected(ProviderError):
    code = "rejected"
    default_message = "The provider refused the request."


class StreamOptionsUnsupported(ProviderRejected):
    """The endpoint rejects stream_options; retried once without it, never shown."""

    code = "stream_options_unsupported"


class ProviderNotConfigured(ChatError):
    code = "not_configured"
    default_message = "This model's provider has no API key configured on the server."


class BudgetExceeded(ChatError):
    """This month's usage reached the user's budget: nothing is sent until it is raised."""

    code = "budget_exceeded"
    default_message = (
        "You have used all of this month's budget, so the message was not sent. "
        "Ask an administrator to raise your limit."
    )


class SendRateLimited(ChatError):
    code = "send_rate_limited"
    default_message = "You are sending messages too quickly. Wait a minute and send again."


class TooManyReplies(ChatError):
    code = "too_many_replies"
    default_message = (
        "You already have the most replies being written at once. "
        "Wait for one to finish or stop one."
    )
