"""chatsite's data: the provider catalogue, conversations, messages and summaries here; the
ledger in `usage.py`, recall's chunks in `recall.py`, dated prices in `pricing.py`,
provider incidents in `health.py`, import sources in `imports.py`.

Only `services.py` writes these rows; status fields change through its conditional updates.
"""

import enum
import uuid
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext

# The ledger and recall live in modules of their own; importing them here registers them
# with the app and keeps `from conversations.models import X` the one way to name a model.
from conversations.models.health import IncidentKind, ProviderIncident
from conversations.models.imports import ImportedConversation, ImportJob, ImportJobStatus
from conversations.models.pricing import ModelPrice, PriceBand, Repricing
from conversations.models.recall import MessageChunk
from conversations.models.usage import Currency, UsageBudget, UsageKind, UsageRecord


class Provider(models.Model):
    """An OpenAI-compatible endpoint. Its key lives in the environment, never here."""

    slug = models.SlugField(unique=True, help_text="Also selects the <PREFIX>_API_KEY variable.")
    name = models.CharField(max_length=80)
    # Used unless <PREFIX>_BASE_URL overrides it.
    base_url = models.URLField(max_length=300)
    currency = models.CharField(max_length=3, choices=Currency.choices, default=Currency.USD)
    # Some compatible servers reject stream_options or never send usage; learned per provider
    # (None: not yet known) so later requests stop asking and usage is flagged as estimated.
    stream_usage_supported = models.BooleanField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ChatModel(models.Model):
    """One model of a provider's catalogue, with its limits, abilities and prices."""

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="models")
    name = models.CharField(max_length=120, help_text="The id the API expects, e.g. deepseek-chat")
    label = models.CharField(max_length=120, blank=True)
    context_window = models.PositiveIntegerField(default=32_768)
    max_output = models.PositiveIntegerField(default=4_096)
    supports_vision = models.BooleanField(default=False)
    supports_thinking = models.BooleanField(default=False)
    # Reasoner models think whatever the switch says (deepseek-reasoner).
    always_thinks = models.BooleanField(default=False)
    supports_json = models.BooleanField(default=False)
    # Prices per million tokens, in the provider's currency.
    input_price = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal(0))
    cached_input_price = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal(0))
    output_price = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal(0))
    is_active = models.BooleanField(default=True)
    # Reported prompt_tokens over our count, learned from recent replies (tokens.py): the
    # bundled tokenizer's count, or the estimate's for text other than CJK, is multiplied
    # by token_ratio, the estimate's CJK part by token_ratio_cjk.
    token_ratio = models.FloatField(default=1.0)
    token_ratio_cjk = models.FloatField(default=1.0)
    # True when found through the endpoint's /models rather than the built-in presets.
    discovered = models.BooleanField(default=False)
    # Provider health thresholds of this model; empty: the site's PROVIDER_HEALTH_* settings
    # (a reasoner, slow to its first token by nature, may need a higher TTFT one).
    health_error_rate = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Failed calls over all calls, 0 to 1; empty: the site's default.",
    )
    health_ttft_p95_seconds = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.1)],
        help_text="Seconds to the first token (95th percentile); empty: the site's default.",
    )

    class Meta:
        ordering = ["provider__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "name"], name="chatmodel_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.provider.slug}/{self.name}"

    @property
    def display_name(self) -> str:
        return self.label or self.name


class Conversation(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="conversations"
    )
    title = models.CharField(max_length=200, blank=True)
    # A title the user typed is never replaced by a generated one.
    title_from_user = models.BooleanField(default=False)
    chat_model = models.ForeignKey(
        ChatModel, on_delete=models.SET_NULL, null=True, related_name="conversations"
    )
    system_prompt = models.TextField(blank=True)
    # Generation parameters; None means "the model's default".
    temperature = models.FloatField(null=True, blank=True)
    top_p = models.FloatField(null=True, blank=True)
    max_tokens = models.PositiveIntegerField(null=True, blank=True)
    stop = models.JSONField(default=list, blank=True)
    thinking_enabled = models.BooleanField(default=False)
    thinking_budget = models.PositiveIntegerField(null=True, blank=True)
    json_mode = models.BooleanField(default=False)
    # Earlier turns relevant to each new message are retrieved into its request.
    recall_enabled = models.BooleanField(default=True)
    # Some turn has more than one version (an edit, a regeneration, an imported tree):
    # until then every older message is on the branch, which spares recall reading the path.
    has_branches = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # Bumped by every message so the sidebar sorts by last activity.
    updated_at = models.DateTimeField(auto_now=True)
    archived = models.BooleanField(default=False)
    # The last message of the branch on screen: new messages continue from it, and edits,
    # regenerations and sibling paging move it. Null: the newest message (older rows).
    current_leaf = models.ForeignKey(
        "Message", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    # When a summary job was queued and has not started yet: while set, due replies queue
    # no other (the queued one summarises the thread as it is when it runs).
    summary_job_queued_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        indexes = [
            # conversation_list_for_user: a user's live conversations, most recent first.
            models.Index(fields=["owner", "archived", "-updated_at"], name="conv_owner_recent"),
        ]

    def __str__(self) -> str:
        return self.title or f"Conversation {self.uuid}"

    @property
    def display_title(self) -> str:
        return self.title or gettext("New chat")


class Role(models.TextChoices):
    SYSTEM = "system", "System"
    USER = "user", "User"
    ASSISTANT = "assistant", "Assistant"


class MessageStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    STREAMING = "streaming", "Streaming"
    COMPLETE = "complete", "Complete"
    INTERRUPTED = "interrupted", "Interrupted"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"
    TRUNCATED = "truncated", "Truncated"

    # The sets every module asks about, defined once (nonmember: not choices themselves).
    # Not final yet: a generator owns the reply, or is about to.
    IN_FLIGHT = enum.nonmember(("pending", "streaming"))
    # Final: no generator will change the reply again.
    FINAL = enum.nonmember(("complete", "interrupted", "cancelled", "failed", "truncated"))
    # Ended short of complete: the page offers Retry.
    RETRYABLE = enum.nonmember(("interrupted", "cancelled", "failed", "truncated"))
    # Text the model may see again (and worth training on): finished, or stopped with its
    # text kept.
    REUSABLE = enum.nonmember(("complete", "truncated", "cancelled", "interrupted"))


@dataclass(frozen=True)
class Siblings:
    """A message among the versions of its turn (edits of a user message, regenerations
    of a reply): shown as "position / count" with links to its neighbours."""

    position: int = 1
    count: int = 1
    previous_uuid: str = ""
    next_uuid: str = ""


NO_SIBLINGS = Siblings()


class Message(models.Model):
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    # Messages form a tree: an edit or a regenerate adds a sibling under the same parent.
    parent = models.ForeignKey(
        "self", on_delete=models.CASCADE, null=True, blank=True, related_name="children"
    )
    role = models.CharField(max_length=10, choices=Role.choices)
    content = models.TextField(blank=True)
    # The model's reasoning, stored apart and never sent back to a provider.
    reasoning = models.TextField(blank=True)
    status = models.CharField(
        max_length=12, choices=MessageStatus.choices, default=MessageStatus.COMPLETE
    )
    finish_reason = models.CharField(max_length=40, blank=True)
    error_code = models.CharField(max_length=40, blank=True)
    error_text = models.TextField(blank=True)
    # The catalogue row and its name at the time: the name survives catalogue edits.
    chat_model = models.ForeignKey(ChatModel, on_delete=models.SET_NULL, null=True, blank=True)
    model_name = models.CharField(max_length=120, blank=True)
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    reasoning_tokens = models.PositiveIntegerField(null=True, blank=True)
    cached_tokens = models.PositiveIntegerField(null=True, blank=True)
    time_to_first_token_ms = models.PositiveIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    # From the first reasoning token to the first answer token ("Thought for 12 s").
    reasoning_ms = models.PositiveIntegerField(null=True, blank=True)
    # What the request carried: messages sent, turns dropped, estimated tokens.
    context = models.JSONField(default=dict, blank=True)
    # Client-supplied on user messages so a double press or a replay never makes two.
    idempotency_key = models.CharField(max_length=64, null=True, blank=True)
    # Written by the live generator with each partial save; a stale one means nobody is
    # generating this reply any more and the sweeper may interrupt it.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    # Not columns: set on loaded instances by the code that reads them, and read with
    # getattr where they may be absent.
    loaded_images: "list[Attachment]"  # selectors.attach_images
    siblings: Siblings  # presenters, and the services that add messages
    recorded_cost: tuple[Decimal, str]  # services.reply_finish

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation"],
                condition=Q(status__in=MessageStatus.IN_FLIGHT),
                name="one_reply_in_flight_per_conversation",
            ),
            models.UniqueConstraint(
                fields=["conversation", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="message_idempotency_key_unique",
            ),
            models.CheckConstraint(
                condition=Q(role=Role.USER) | Q(idempotency_key__isnull=True),
                name="idempotency_key_only_on_user_messages",
            ),
        ]
        indexes = [
            # messages_for_page / context_for_reply: a conversation's messages by id.
            models.Index(fields=["conversation", "id"], name="message_conv_id"),
            # No index holds heartbeat_at (nor, on Postgres, content: migration 0007), so a
            # streaming reply's partial saves are HOT updates. reply_interrupt_stale finds the
            # few replies in flight through one_reply_in_flight_per_conversation.
            # Admin's recent provider errors, newest first: the few replies with an error.
            models.Index(
                fields=["-completed_at"],
                condition=~Q(error_code=""),
                name="message_errors_recent",
            ),
            # Provider health: replies finished in the last hour, day or week, by model. Set
            # once, by the final save, so partial saves stay HOT updates.
            models.Index(
                fields=["completed_at"],
                condition=Q(role="assistant"),
                name="message_replies_completed",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.role} {self.uuid}"

    @property
    def is_in_flight(self) -> bool:
        return self.status in MessageStatus.IN_FLIGHT

    @property
    def total_tokens(self) -> int | None:
        if self.prompt_tokens is None and self.completion_tokens is None:
            return None
        return (self.prompt_tokens or 0) + (self.completion_tokens or 0)


class ProviderFailure(Message):
    """A reply that ended on a provider's error (out of credit, a refused key, a provider
    down): admin's list of recent provider errors (selectors.provider_failures)."""

    class Meta:
        proxy = True
        ordering = ["-completed_at"]
        verbose_name = "provider error"
        verbose_name_plural = "recent provider errors"


class Attachment(models.Model):
    """An image a user uploaded for one of their messages; served only to its owner."""

    # Public id: the upload endpoint returns it and the composer sends it with the message.
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attachments"
    )
    # Empty between the upload and the send; message_send claims it for the user message.
    message = models.ForeignKey(
        Message, on_delete=models.CASCADE, null=True, blank=True, related_name="attachments"
    )
    # Under MEDIA_ROOT but never under a public URL: the owner-only view serves it.
    file = models.FileField(upload_to="attachments/%Y/%m/")
    # Found from the file's magic bytes, never taken from the client.
    content_type = models.CharField(max_length=40)
    size = models.PositiveIntegerField()
    # The name the user's file had, for exports and imports only: the stored file is named
    # by our uuid, never by the client.
    name = models.CharField(max_length=200, blank=True)
    # Pixels, read from the image's header; null for rows older than these columns.
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.content_type} {self.uuid}"


class Persona(models.Model):
    """A system prompt a user saved under a name to reuse in other conversations."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="personas"
    )
    name = models.CharField(max_length=80)
    system_prompt = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["owner", "name"]
        constraints = [
            # Saving under an existing name replaces that preset (persona_save).
            models.UniqueConstraint(fields=["owner", "name"], name="persona_unique_name"),
        ]

    def __str__(self) -> str:
        return self.name


class ConversationSummary(models.Model):
    """A rolling summary: it condenses `previous` plus the turns up to `covers_through`."""

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="summaries"
    )
    previous = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    text = models.TextField()
    covers_through = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="+")
    token_count = models.PositiveIntegerField(default=0)
    model_name = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["conversation", "-covers_through_id"]
        constraints = [
            # Two workers summarising the same range: the loser's insert fails and it writes
            # nothing.
            models.UniqueConstraint(
                fields=["conversation", "covers_through"], name="summary_one_per_range"
            ),
        ]

    def __str__(self) -> str:
        return f"Summary of {self.conversation_id} through {self.covers_through_id}"
