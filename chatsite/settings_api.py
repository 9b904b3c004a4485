"""Settings of the REST API (/api/v1/), star-imported by chatsite.settings."""

import re

from django.core.exceptions import ImproperlyConfigured

from chatsite.env import env_int, env_str

# --- REST API (/api/v1/) ---------------------------------------------------------------
# Requests per token (per user for the browser session), e.g. "120/min", "5000/day".
API_THROTTLE_RATE = env_str("API_THROTTLE_RATE", "120/min")
if not re.fullmatch(r"\d+/(s|sec|m|min|h|hour|d|day)", API_THROTTLE_RATE):
    raise ImproperlyConfigured(
        f"API_THROTTLE_RATE must look like 120/min (per s, min, hour or day), "
        f"got {API_THROTTLE_RATE!r}"
    )
# The largest file the importer reads; it is parsed whole, so this bounds its memory.
API_IMPORT_MAX_BYTES = env_int("API_IMPORT_MAX_BYTES", 50 * 1024 * 1024, minimum=1024)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # First, so an anonymous request is answered 401 with a Bearer challenge.
        "api.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttles.TokenRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"api": API_THROTTLE_RATE},
    "DEFAULT_SCHEMA_CLASS": "api.schema.ChatsiteAutoSchema",
    # `format` is the exports' own parameter (json, md, jsonl), not a renderer choice.
    "URL_FORMAT_OVERRIDE": None,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "chatsite API",
    "DESCRIPTION": "Your conversations: list, read, export and import.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}
