"""Print what `make run` found: database, channel layer, broker, providers, and the URL."""

from django.conf import settings
from django.core.management.base import BaseCommand

from conversations.models import Provider
from conversations.providers import catalogue


def _redacted(url: str) -> str:
    """A service URL without its password."""
    from urllib.parse import urlparse

    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@")
    return url


def _recall_mode() -> str:
    """Which recall this database allows, said plainly at start-up."""
    from conversations.recall import embedders, store

    if not settings.RECALL_ENABLED:
        return "off (RECALL_ENABLED=false)"
    reason = store.vectors_unavailable_reason()
    if reason is None:
        return f"hybrid: vectors ({embedders.current().name}) and words"
    words = "full-text and trigrams" if store.trigrams_available() else "full-text"
    return f"lexical only ({words}): {reason}"


class Command(BaseCommand):
    help = "Describe the services and providers this configuration uses."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000/")

    def handle(self, *args, url: str, **options) -> None:
        db = settings.DATABASES["default"]
        database = (
            f"embedded PostgreSQL, data in {settings.EMBEDDED_POSTGRES_DIR}"
            if settings.DATABASE_IS_EMBEDDED
            else f"PostgreSQL {db.get('HOST') or 'local'}/{db['NAME']}"
        )
        layer = (
            f"Redis {_redacted(settings.REDIS_URL)}"
            if settings.REDIS_URL
            else "in-memory (one process)"
        )
        broker = (
            f"Celery via {_redacted(settings.CELERY_BROKER_URL)} (run `make worker`)"
            if settings.CELERY_BROKER_URL
            else "none: background jobs run in-process"
        )
        enabled = catalogue.enabled_providers()
        names = ", ".join(p.name for p in enabled) or "none (set an API key, see .env.example)"
        disabled = [p.name for p in Provider.objects.all() if p not in enabled]
        self.stdout.write(f"chatsite at {url}")
        self.stdout.write(f"  database:      {database}")
        self.stdout.write(f"  channel layer: {layer}")
        self.stdout.write(f"  broker:        {broker}")
        self.stdout.write(f"  recall:        {_recall_mode()}")
        self.stdout.write(f"  providers:     {names}")
        if disabled:
            self.stdout.write(f"  (without a key: {', '.join(disabled)})")
