"""Recall's index: every finished message cut into chunks, each with its vector.

The `embedding` column is not a Django field: it exists only where the `vector` extension
does (migration 0008 adds it), so that the same schema serves a Postgres without pgvector,
where recall is lexical. `conversations/recall/store.py` is the one place that reads or
writes it. `search_vector` is a generated column (the 'simple' parse of `text`) with its GIN
index, and `text` carries a pg_trgm index where that extension exists.
"""

from django.db import models


class MessageChunk(models.Model):
    # Neither key needs an index of its own: the unique constraint leads with message and
    # chunk_conversation with conversation.
    message = models.ForeignKey(
        "conversations.Message", on_delete=models.CASCADE, related_name="chunks", db_index=False
    )
    # The message's conversation, kept here so recall filters one conversation's chunks
    # without a join; deleting the conversation deletes its chunks and vectors.
    conversation = models.ForeignKey(
        "conversations.Conversation",
        on_delete=models.CASCADE,
        related_name="chunks",
        db_index=False,
    )
    position = models.PositiveIntegerField()
    text = models.TextField()
    # "provider/model" of the vector stored with this chunk; empty: no vector (lexical only).
    embedding_model = models.CharField(max_length=200, blank=True)
    dimensions = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # Re-indexing a message replaces its chunks: it never adds a second set.
            models.UniqueConstraint(fields=["message", "position"], name="chunk_one_per_place"),
        ]
        indexes = [
            models.Index(fields=["conversation", "message"], name="chunk_conversation"),
        ]

    def __str__(self) -> str:
        return f"Chunk {self.position} of message {self.message_id}"
