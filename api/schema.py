"""drf-spectacular extensions: the Bearer token scheme and the errors every operation
can answer."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse

from api.serializers import ErrorSerializer


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A personal API token created on the API settings page.",
        }


class ChatsiteAutoSchema(AutoSchema):
    """Every operation documents the errors it can answer, each with the `{"detail": ...}`
    body: a client generated from the schema then knows every status it may get."""

    # Extended here, not in get_response_serializers: @extend_schema(responses=...)
    # replaces that method, and the errors belong to every operation.
    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for code, description in self._error_responses().items():
            if code not in responses:
                error = OpenApiResponse(ErrorSerializer, description)
                responses[code] = self._get_response_for_code(error, code, direction=direction)
        return responses

    def _error_responses(self) -> dict[str, str]:
        errors = {
            "400": "A query parameter this operation does not take, or a value it cannot use.",
            "401": "No valid API token (or session).",
            "429": "Too many requests: the Retry-After header says when to try again.",
        }
        if self.method not in ("GET", "HEAD", "OPTIONS"):
            errors["403"] = "A session-authenticated request without its CSRF token."
        if "{uuid}" in self.path:
            errors["404"] = "No conversation of yours has this id."
        elif self._get_paginator() is not None:
            errors["404"] = "No such page (or cursor)."
        return errors
