"""Settings for running chatsite in production: metrics, provider health alerts and mail.

Star-imported at the end of chatsite.settings, after `.env` is loaded.
"""

import os
from pathlib import Path

from chatsite.env import env_bool, env_float, env_int, env_list, env_str, var_dir

# --- Metrics (/metrics, Prometheus text format) ------------------------------------------
# Off unless enabled. With METRICS_TOKEN set a scrape must send `Authorization: Bearer
# <token>`; without one only addresses in METRICS_ALLOWED_NETWORKS may scrape.
METRICS_ENABLED = env_bool("METRICS_ENABLED", False)
METRICS_TOKEN = env_str("METRICS_TOKEN")
METRICS_ALLOWED_NETWORKS = env_list(
    "METRICS_ALLOWED_NETWORKS",
    ["127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"],
)
# A Celery worker has no web server: with a port set it serves its host's samples on
# METRICS_WORKER_ADDRESS:METRICS_WORKER_PORT/metrics itself (no token: keep it internal).
METRICS_WORKER_PORT = env_int("METRICS_WORKER_PORT", 0, minimum=0)
METRICS_WORKER_ADDRESS = env_str("METRICS_WORKER_ADDRESS", "127.0.0.1")
# Every daphne process and Celery worker of one host writes its samples here, and a scrape
# of any one process sums them (prometheus-client's multiprocess mode). The variable must be
# set before prometheus_client is imported, so it is set here, at settings time.
if METRICS_ENABLED:
    if not env_str("PROMETHEUS_MULTIPROC_DIR"):  # unset, or left empty in .env
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(var_dir() / "metrics")
    Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]).mkdir(parents=True, exist_ok=True)

# --- Provider health (admin page, banner, e-mail) ----------------------------------------
# A provider/model is unhealthy when, over the last PROVIDER_HEALTH_ALERT_WINDOW seconds and
# at least PROVIDER_HEALTH_MIN_CALLS calls, its error rate or its TTFT p95 crosses these.
PROVIDER_HEALTH_ERROR_RATE = env_float("PROVIDER_HEALTH_ERROR_RATE", 0.2, minimum=0.0)
PROVIDER_HEALTH_TTFT_P95_SECONDS = env_float("PROVIDER_HEALTH_TTFT_P95_SECONDS", 10.0, minimum=0.1)
PROVIDER_HEALTH_MIN_CALLS = env_int("PROVIDER_HEALTH_MIN_CALLS", 5, minimum=1)
PROVIDER_HEALTH_ALERT_WINDOW = env_int("PROVIDER_HEALTH_ALERT_WINDOW", 3600, minimum=60)
# Alert e-mails go to every active staff account with an address, and to these.
ALERT_EMAILS = env_list("ALERT_EMAILS", [])

# --- Mail (Django's settings; the console by default, so alerts show in the log) ---------
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "chatsite@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
