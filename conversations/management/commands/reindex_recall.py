"""Backfill or re-embed recall's index: `manage.py reindex_recall [--conversation UUID]
[--model provider/model]`. Resumable: what is already indexed with the model is skipped,
so an interrupted run picks up where it stopped."""

import time

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from conversations import services
from conversations.models import Conversation
from conversations.recall import embedders, store


class Command(BaseCommand):
    help = "Index finished messages for recall (all, or one conversation's), with progress."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--conversation", help="uuid of the one conversation to index")
        parser.add_argument(
            "--model",
            help="the embedding model to index with (provider/model); it must be the one "
            "EMBEDDING_MODEL configures. Messages embedded by another model are re-embedded.",
        )

    def handle(self, *args, conversation: str | None, model: str | None, **options) -> None:
        embedder = embedders.current()
        if model and model != embedder.name:
            raise CommandError(
                f"The configured embedder is {embedder.name}; set EMBEDDING_MODEL={model} "
                "first, then reindex."
            )
        conversation_id = self._conversation_id(conversation)
        # Without vectors every chunk is lexical: having chunks at all is what counts.
        by_model = embedder.name if store.vectors_available() else None
        pending = services.messages_to_index(
            conversation_id=conversation_id, embedding_model=by_model
        )
        total = pending.count()
        self.stdout.write(f"{total} messages to index with {embedder.name}")
        started = time.monotonic()
        done, chunks = services.pending_index(
            pending=pending,
            embedder=embedder,
            # Messages that arrived meanwhile are indexed too: the total grows with them.
            on_batch=lambda done, _: self._progress(done, max(total, done), started),
        )
        self.stdout.write(f"\nindexed {done} messages into {chunks} chunks")

    def _conversation_id(self, uuid: str | None) -> int | None:
        if uuid is None:
            return None
        try:
            return Conversation.objects.values_list("pk", flat=True).get(uuid=uuid)
        except (Conversation.DoesNotExist, ValueError, ValidationError) as exc:
            raise CommandError(f"No conversation {uuid}") from exc

    def _progress(self, done: int, total: int, started: float) -> None:
        width = 30
        filled = int(width * done / total) if total else width
        rate = done / max(time.monotonic() - started, 1e-6)
        bar = "#" * filled + "-" * (width - filled)
        self.stdout.write(f"\r[{bar}] {done}/{total} messages, {rate:.1f}/s", ending="")
        self.stdout.flush()
