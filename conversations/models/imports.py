"""Where imported conversations came from: the source app's id of each, so importing the
same export again finds it already here (services/imports/ writes these rows)."""

from django.conf import settings
from django.db import models


class ImportedConversation(models.Model):
    """One conversation of another app's export (or of a chatsite export) imported as
    `conversation`. Deleting the conversation deletes this row, so it can be imported again."""

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(
        "conversations.Conversation", on_delete=models.CASCADE, related_name="import_sources"
    )
    # The format's name (chatsite, chatgpt, claude, openwebui) and the conversation's id in
    # it: ChatGPT's conversation_id, Claude's uuid, Open WebUI's chat id, chatsite's uuid.
    source = models.CharField(max_length=20)
    source_id = models.CharField(max_length=200)
    imported_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # The import's duplicate check (selectors.imported_source_ids) reads through this
            # index; two imports of the same file at once: the second one's insert fails.
            models.UniqueConstraint(
                fields=["owner", "source", "source_id"], name="imported_conversation_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source} {self.source_id}"
