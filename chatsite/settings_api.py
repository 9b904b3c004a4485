"""Settings of the REST API (/api/v1/), star-imported by chatsite.settings."""

import re
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from chatsite.env import env_int, env_str, var_dir

# --- REST API (/api/v1/) ---------------------------------------------------------------
# Requests per token (per user for the browser session), e.g. "120/min", "5000/day".
API_THROTTLE_RATE = env_str("API_THROTTLE_RATE", "120/min")
if not re.fullmatch(r"\d+/(s|sec|m|min|h|hour|d|day)", API_THROTTLE_RATE):
    raise ImproperlyConfigured(
        f"API_THROTTLE_RATE must look like 120/min (per s, min, hour or day), "
        f"got {API_THROTTLE_RATE!r}"
    )
# The largest file the importer takes (a ChatGPT export of years runs to a few hundred MB).
# One over IMPORT_JOB_MIN_BYTES is saved under IMPORT_JOB_DIR and imported by a background
# job that reads it as a stream (flat memory); a smaller one is read whole, at once.
API_IMPORT_MAX_BYTES = env_int("API_IMPORT_MAX_BYTES", 256 * 1024 * 1024, minimum=1024)
IMPORT_JOB_MIN_BYTES = env_int("IMPORT_JOB_MIN_BYTES", 5 * 1024 * 1024, minimum=0)
IMPORT_JOB_DIR = Path(env_str("IMPORT_JOB_DIR") or var_dir() / "imports")
# A running job whose progress has not been saved for this long lost its worker (a restart,
# a crash): the sweeper fails it. Progress is saved every few seconds while a job runs.
IMPORT_JOB_STALE_SECONDS = env_int("IMPORT_JOB_STALE_SECONDS", 600, minimum=60)
# A failed job lists at most this many of the file's broken conversations.
IMPORT_JOB_FAILURES_KEPT = env_int("IMPORT_JOB_FAILURES_KEPT", 50, minimum=1)
# A ZIP may unpack to at most this (a ZIP bomb stops here).
IMPORT_ZIP_MAX_UNPACKED_BYTES = env_int(
    "IMPORT_ZIP_MAX_UNPACKED_BYTES", 20 * API_IMPORT_MAX_BYTES, minimum=1024
)
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
