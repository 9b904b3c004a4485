"""SDK and transport errors in chatsite's own terms (ProviderError subclasses), for chat and
embedding calls alike; a call that got no status is counted in the metrics here (the
response hook counts the ones that did)."""

import httpcore2
import httpx2
import openai

from chatsite.logging import MASK, mask_secrets
from conversations.errors import (
    REFUSED_WITH_DETAIL,
    UNREACHABLE,
    ContextTooLong,
    ProviderAuthFailed,
    ProviderConnectionLost,
    ProviderError,
    ProviderOutOfCredit,
    ProviderRateLimited,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
    StreamOptionsUnsupported,
)
from conversations.observability import metrics
from conversations.providers import credit


def mapped_error(
    exc: Exception, *, api_key: str, started: bool = False, stream_options: bool = False
) -> ProviderError:
    """An SDK or transport error in our own terms, for chat and embedding calls alike."""
    if isinstance(exc, openai.APIStatusError):
        return status_error(exc, api_key=api_key, stream_options=stream_options)
    # No status came: the response hook counted nothing, so the error is counted here.
    waited_out = timed_out(exc)
    metrics.upstream_failed(
        url=request_url(exc), status_class="timeout" if waited_out else "connection"
    )
    if waited_out:
        return ProviderTimeout()
    if started:
        return ProviderConnectionLost()
    return ProviderUnavailable(UNREACHABLE % {"detail": type(exc).__name__})


def request_url(exc: Exception) -> object:
    try:
        return exc.request.url  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):  # httpx2 raises when no request was set
        return ""


def timed_out(exc: BaseException) -> bool:
    """A timeout, judged by the first error under the SDK's and httpx2's wrappers: the
    aiohttp transport reports every failed connection (a refusal, a server hanging up) as
    an httpx2.ConnectTimeout. Under the sync client's httpx2 transport (embeddings) that
    first error is httpcore2's, whose timeouts are timeouts."""
    cause: BaseException | None = exc
    while isinstance(cause, openai.APIError | httpx2.HTTPError):
        cause = cause.__cause__
    if cause is None:
        return isinstance(exc, openai.APITimeoutError | httpx2.TimeoutException)
    return isinstance(cause, TimeoutError | httpcore2.TimeoutException)


def status_error(
    exc: openai.APIStatusError, *, api_key: str, stream_options: bool = False
) -> ProviderError:
    """`stream_options`: the request asked for a usage chunk, which the endpoint may refuse."""
    code, error_type, message = credit.error_fields(exc.body)
    message = message or exc.message or ""
    status = exc.status_code
    if credit.is_out_of_credit(status, code, error_type, message):
        return ProviderOutOfCredit()
    if status in (401, 403):
        return ProviderAuthFailed()
    if status == 429:
        return ProviderRateLimited()
    if status >= 500:
        return ProviderUnavailable()
    lowered = f"{code} {message}".lower()
    if "context" in lowered and ("length" in lowered or "long" in lowered):
        return ContextTooLong()
    if stream_options and "stream_options" in lowered:
        return StreamOptionsUnsupported()
    # Some providers echo the key in their error text; this text is saved and shown.
    message = mask_secrets(message)
    if len(api_key or "") >= 4:
        message = message.replace(api_key, MASK)
    return ProviderRejected((REFUSED_WITH_DETAIL % {"detail": message[:300]}).strip())
