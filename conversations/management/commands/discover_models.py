"""Ask every enabled provider's /models for models the catalogue does not know yet."""

from django.core.management.base import BaseCommand

from conversations.providers import catalogue
from conversations.providers.discovery import discover_models, provider_problem

PROBLEMS = {
    "unreachable": "cannot be reached",
    "key_refused": "refuses its API key",
    "no_answer": "did not answer",
}


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
            look = provider_problem(provider)
            if look.problem:
                # Said at start-up: replies to its models fail until it answers.
                said = PROBLEMS[look.problem]
                self.stdout.write(
                    self.style.WARNING(
                        f"{provider.name} {said} ({look.detail}): its replies will fail until"
                        " it answers"
                    )
                )
