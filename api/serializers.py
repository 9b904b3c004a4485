"""Shapes of the REST API's responses (and the import upload)."""

from rest_framework import serializers

from conversations import exports
from conversations.models import Conversation, Message


class ModelRefSerializer(serializers.Serializer):
    provider = serializers.CharField(source="provider.slug")
    name = serializers.CharField()


class ConversationSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    model = ModelRefSerializer(source="chat_model", allow_null=True, read_only=True)
    message_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Conversation
        fields = [
            "id",
            "title",
            "model",
            "archived",
            "created_at",
            "updated_at",
            "message_count",
        ]


class ParametersSerializer(serializers.ModelSerializer):
    class Meta:
        model = Conversation
        fields = list(exports.PARAMETER_FIELDS)


class ConversationDetailSerializer(ConversationSerializer):
    parameters = ParametersSerializer(source="*", read_only=True)
    messages_url = serializers.SerializerMethodField()
    export_urls = serializers.SerializerMethodField()

    class Meta(ConversationSerializer.Meta):
        fields = ConversationSerializer.Meta.fields + ["parameters", "messages_url", "export_urls"]

    def _url(self, name: str, conversation: Conversation) -> str:
        from django.urls import reverse

        path = reverse(name, kwargs={"uuid": conversation.uuid})
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path

    def get_messages_url(self, conversation: Conversation) -> str:
        return self._url("api:conversation-messages", conversation)

    def get_export_urls(self, conversation: Conversation) -> dict[str, str]:
        base = self._url("api:conversation-export", conversation)
        return {fmt: f"{base}?format={fmt}" for fmt in exports.EXPORT_FORMATS}


class UsageSerializer(serializers.ModelSerializer):
    class Meta:
        model = Message
        fields = list(exports.USAGE_FIELDS)


class MessageSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="uuid", read_only=True)
    # Annotated by selectors.conversation_messages: no query per message. (The serializer
    # metaclass takes declared fields off the class: this does not replace Field.parent.)
    parent = serializers.UUIDField(  # type: ignore[assignment]
        source="parent_uuid", allow_null=True, read_only=True
    )
    model = ModelRefSerializer(source="chat_model", allow_null=True, read_only=True)
    usage = UsageSerializer(source="*", read_only=True)

    class Meta:
        model = Message
        fields = [
            "id",
            "parent",
            "role",
            "content",
            "reasoning",
            "status",
            "finish_reason",
            "error_code",
            "error_text",
            "model",
            "model_name",
            "usage",
            "created_at",
            "completed_at",
        ]


class ImportUploadSerializer(serializers.Serializer):
    file = serializers.FileField(
        help_text=(
            "A chatsite JSON export; ChatGPT's conversations.json or its data export ZIP; "
            "Claude's conversations.json; an Open WebUI chat export. The format is told "
            "from the content."
        )
    )
    dry_run = serializers.BooleanField(
        default=False, help_text="Count what the import would do, and write nothing."
    )


class ImportedConversationSerializer(serializers.Serializer):
    id = serializers.UUIDField(source="uuid")
    title = serializers.CharField()
    created_at = serializers.DateTimeField()


class ImportFailureSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="0-based position in the file.")
    title = serializers.CharField()
    source_id = serializers.CharField(help_text="The conversation's id in the export.")
    error = serializers.CharField(help_text="Names the message or node, and what is wrong.")


_SKIPPED = serializers.DictField(
    child=serializers.IntegerField(),
    help_text="Nodes of the export not made messages, by reason: placeholder, hidden, "
    "system, tool, other_content.",
)


class ImportCountSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="0-based position in the file.")
    title = serializers.CharField()
    format = serializers.CharField(
        source="source", help_text="The format: chatsite, ChatGPT, Claude, Open WebUI."
    )
    source_id = serializers.CharField()
    outcome = serializers.ChoiceField(
        ["new", "duplicate", "merged", "empty"],
        help_text="new; duplicate: imported before, passed over; merged: imported before, "
        "its new messages added (`messages` counts those); empty: nothing to import.",
    )
    messages = serializers.IntegerField()
    branch_points = serializers.IntegerField(help_text="Turns with more than one version.")
    skipped = _SKIPPED
    missing_files = serializers.IntegerField(
        help_text="Images and files referred to that the export does not include."
    )
    reason = serializers.CharField(help_text="Why an empty conversation has nothing.")


class ImportTotalsSerializer(serializers.Serializer):
    conversations = serializers.IntegerField(source="new", help_text="New conversations.")
    messages = serializers.IntegerField()
    branch_points = serializers.IntegerField()
    skipped = _SKIPPED
    missing_files = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    merged_conversations = serializers.IntegerField(
        source="merged", help_text="Conversations imported before, given new messages."
    )
    merged_messages = serializers.IntegerField(help_text="The new messages they were given.")
    empty = serializers.IntegerField()
    other_files = serializers.IntegerField(help_text="Files of a ZIP with no conversations.")


class ImportResultSerializer(serializers.Serializer):
    dry_run = serializers.BooleanField()
    formats = serializers.ListField(child=serializers.CharField())
    imported = ImportedConversationSerializer(source="conversations", many=True)
    failed = ImportFailureSerializer(source="failures", many=True)
    totals = ImportTotalsSerializer(source="*")
    conversations = ImportCountSerializer(source="counts", many=True)


class ImportRefusalSerializer(serializers.Serializer):
    """A refusal: the upload unreadable (detail alone), or a conversation of it broken
    (the counts as well, and each failure)."""

    detail = serializers.CharField(help_text="Why nothing was imported.")
    imported = ImportedConversationSerializer(many=True, help_text="Always empty.")
    failed = ImportFailureSerializer(many=True)
    dry_run = serializers.BooleanField(required=False)
    formats = serializers.ListField(child=serializers.CharField(), required=False)
    totals = ImportTotalsSerializer(required=False)
    conversations = ImportCountSerializer(many=True, required=False)


class ImportJobTotalsSerializer(serializers.Serializer):
    duplicates = serializers.IntegerField(required=False)
    merged_conversations = serializers.IntegerField(required=False)
    merged_messages = serializers.IntegerField(required=False)
    empty = serializers.IntegerField(required=False)
    branch_points = serializers.IntegerField(required=False)
    missing_files = serializers.IntegerField(required=False)
    other_files = serializers.IntegerField(required=False)
    skipped = serializers.DictField(child=serializers.IntegerField(), required=False)


class ImportJobSerializer(serializers.Serializer):
    """A large upload's import, run in the background: check every conversation, then write."""

    id = serializers.UUIDField(source="uuid")
    url = serializers.SerializerMethodField(help_text="Where to poll this job.")
    status = serializers.ChoiceField(["queued", "running", "done", "failed"])
    dry_run = serializers.BooleanField()
    file_name = serializers.CharField()
    file_size = serializers.IntegerField()
    formats = serializers.CharField(help_text="The formats told, once the job has started.")
    checked = serializers.IntegerField(help_text="Conversations the checking pass has read.")
    conversations_total = serializers.IntegerField(
        allow_null=True, help_text="New conversations to write; null until every one is checked."
    )
    messages_total = serializers.IntegerField(allow_null=True)
    conversations_done = serializers.IntegerField(help_text="Conversations written so far.")
    messages_done = serializers.IntegerField()
    totals = ImportJobTotalsSerializer()
    error = serializers.CharField(help_text="Why it failed, naming the conversation and node.")
    failed = ImportFailureSerializer(source="failures", many=True)
    created_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    finished_at = serializers.DateTimeField(allow_null=True)

    def get_url(self, job) -> str:
        from django.urls import reverse

        path = reverse("api:import_job", args=[job.uuid])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()


def errors_detail(errors: dict) -> str:
    """A serializer's errors as the one sentence of an ErrorSerializer's `detail`."""
    return " ".join(
        f"{name}: {' '.join(str(message) for message in messages)}"
        for name, messages in errors.items()
    )


def _object(required: dict, **optional) -> dict:
    return {"type": "object", "required": list(required), "properties": {**required, **optional}}


_TEXT = {"type": "string"}
_MOMENT = {"type": "string", "format": "date-time"}
_EXPORTED_MESSAGE = _object(
    {"id": {"type": "string", "format": "uuid"}, "role": _TEXT, "content": _TEXT},
    parent={"type": "string", "format": "uuid", "nullable": True},
    reasoning=_TEXT,
    status=_TEXT,
    created_at=_MOMENT,
)
_EXPORTED_CONVERSATION = _object(
    {
        "id": {"type": "string", "format": "uuid"},
        "title": _TEXT,
        "messages": {"type": "array", "items": _EXPORTED_MESSAGE},
    },
    archived={"type": "boolean"},
    created_at=_MOMENT,
    updated_at=_MOMENT,
    parameters={"type": "object"},
    current_leaf={"type": "string", "format": "uuid", "nullable": True},
    summaries={"type": "array", "items": {"type": "object"}},
)
# The JSON export's envelope (exports.py documents the format): described, not a
# serializer, since it is streamed as text rather than rendered.
JSON_EXPORT_SCHEMA = _object(
    {
        "format": {"type": "string", "enum": [exports.FORMAT]},
        "version": {"type": "integer"},
        "exported_at": _MOMENT,
        "conversations": {"type": "array", "items": _EXPORTED_CONVERSATION},
    }
)
