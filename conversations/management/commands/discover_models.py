"""Ask every enabled provider's /models for models the catalogue does not know yet."""

from django.core.management.base import BaseCommand

from conversations.providers import catalogue
from conversations.providers.discovery import discover_models


class Command(BaseCommand):
    help = "Add models listed by enabled providers' /models endpoints to the catalogue."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--timeout", type=float, default=5.0)

    def handle(self, *args, timeout: float, **options) -> None:
        for provider in catalogue.enabled_providers():
            added = discover_models(provider, timeout=timeout)
            if added:
                names = ", ".join(m.name for m in added)
                self.stdout.write(f"{provider.name}: added {names}")
