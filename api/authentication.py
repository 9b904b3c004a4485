"""`Authorization: Bearer <token>` for the REST API."""

from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions

from api import selectors, services

KEYWORD = "Bearer"


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """A personal API token; no header means "try the next method" (the session)."""

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != KEYWORD.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed(_("Use: Authorization: Bearer <token>."))
        try:
            secret = header[1].decode()
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed(_("Invalid token.")) from None
        token = selectors.api_token_for_secret(secret)
        if token is None:
            raise exceptions.AuthenticationFailed(_("Invalid or revoked token."))
        services.api_token_touch(token=token)
        return token.user, token

    def authenticate_header(self, request) -> str:
        # Makes unauthenticated requests answer 401 (with this challenge) rather than 403.
        return f'{KEYWORD} realm="api"'
