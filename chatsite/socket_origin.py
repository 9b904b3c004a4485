"""The chat socket's Origin check: the full origin (scheme, host and port) of the page that
opens a socket must be this site's, as Django's CSRF check compares it.

Channels' AllowedHostsOriginValidator compared the host name alone, so a page served on
another port of the same host (any other service on that machine) could open a user's
socket with the user's cookie and read their chats. Here the Origin must equal
`<scheme>://<Host header>` (the scheme the socket came in on, or the proxy says it did,
SECURE_PROXY_SSL_HEADER) or be one of CSRF_TRUSTED_ORIGINS, and the Host must be one of
ALLOWED_HOSTS. A socket without an Origin (no browser sends one so) is refused too.
"""

from urllib.parse import urlsplit

from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils.http import is_same_domain


class SameOriginValidator:
    """ASGI middleware: websockets from another origin are refused at the handshake."""

    def __init__(self, application) -> None:
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not origin_allowed(scope):
            return await _refuse(receive, send)
        return await self.application(scope, receive, send)


async def _refuse(receive, send) -> None:
    """Close at the handshake (the server answers 403). Plain ASGI, not channels' denier
    consumer: that one opens a channel-layer receive only to have it cancelled, and a
    channels-redis receive cancelled mid-read can hang its event loop's shutdown."""
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.close"})


def origin_allowed(scope) -> bool:
    headers = {name.lower(): value for name, value in scope.get("headers") or ()}
    origin = headers.get(b"origin", b"").decode("latin-1").strip()
    host = headers.get(b"host", b"").decode("latin-1").strip()
    if not origin or not host:
        return False
    domain, _ = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return False
    if _trusted(origin):
        return True
    scheme = "https" if _secure(scope, headers) else "http"
    return origin.lower() == f"{scheme}://{host}".lower()


def _trusted(origin: str) -> bool:
    """One of CSRF_TRUSTED_ORIGINS, wildcard subdomains (https://*.example.com) as Django's
    CSRF check reads them."""
    if origin in settings.CSRF_TRUSTED_ORIGINS:
        return True
    parsed = urlsplit(origin)
    return any(
        is_same_domain(parsed.netloc, urlsplit(trusted).netloc.lstrip("*"))
        for trusted in settings.CSRF_TRUSTED_ORIGINS
        if "*" in trusted and urlsplit(trusted).scheme == parsed.scheme
    )


def _secure(scope, headers: dict[bytes, bytes]) -> bool:
    if scope.get("scheme") in ("wss", "https"):
        return True
    proxy_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if not proxy_header:
        return False
    name, secure_value = proxy_header
    # Django names it as a META key: HTTP_X_FORWARDED_PROTO is the X-Forwarded-Proto header.
    header = name.removeprefix("HTTP_").replace("_", "-").lower().encode("latin-1")
    value = headers.get(header, b"").decode("latin-1")
    return value.split(",")[0].strip() == secure_value
