"""Logging filter that keeps provider API keys out of every log line."""

import logging

from django.conf import settings

MASK = "***"


def _secrets() -> list[str]:
    credentials = getattr(settings, "PROVIDER_CREDENTIALS", {})
    return [c["api_key"] for c in credentials.values() if len(c.get("api_key") or "") >= 4]


def mask_secrets(text: str) -> str:
    for secret in _secrets():
        text = text.replace(secret, MASK)
    return text


class MaskSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        # Render once so a key passed as an argument is masked too.
        message = record.getMessage()
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = mask_secrets(logging.Formatter().formatException(record.exc_info))
        return True
