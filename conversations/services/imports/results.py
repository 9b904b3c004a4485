"""What an import answers (the counts of every conversation, the failures, what was written)
and the one step both ways of importing share: one conversation of an upload planned, or
counted as empty, or failed with a sentence naming the message or node."""

from collections import Counter
from dataclasses import dataclass, field

from conversations.errors import ValidationFailed
from conversations.models import Conversation
from conversations.services.imports.assets import ZipAssets, assets_attach
from conversations.services.imports.plans import (
    SKIP_REASONS,
    ConversationPlan,
    ConversationSkipped,
    ModelLookup,
    require_storable,
)
from conversations.services.imports.sources import SourceFormat
from conversations.storable import storable_text

# What became of each conversation of the upload; MERGED: imported before, and the newer
# export has messages the conversation here lacks (they are added to it).
NEW, DUPLICATE, EMPTY, MERGED = "new", "duplicate", "empty", "merged"


@dataclass(frozen=True)
class ImportFailure:
    index: int  # 0-based position of the conversation in the upload
    title: str
    error: str  # a sentence naming the message or node and what is wrong with it
    source_id: str = ""  # the conversation's id in the source, when it has one


@dataclass(frozen=True)
class ConversationCount:
    """One conversation of the upload as the dry run and the result count it."""

    index: int
    title: str
    source: str  # the format's label: ChatGPT, Claude, ...
    source_id: str
    outcome: str  # NEW, DUPLICATE (imported before), MERGED or EMPTY (nothing to import)
    messages: int = 0  # MERGED: the new messages only
    branch_points: int = 0
    skipped: dict[str, int] = field(default_factory=dict)  # by SKIP_REASONS key
    missing_files: int = 0
    reason: str = ""  # why it is EMPTY


@dataclass
class ImportResult:
    dry_run: bool = False
    formats: list[str] = field(default_factory=list)
    counts: list[ConversationCount] = field(default_factory=list)
    conversations: list[Conversation] = field(default_factory=list)  # written
    extended: list[Conversation] = field(default_factory=list)  # given new messages
    failures: list[ImportFailure] = field(default_factory=list)
    other_files: int = 0  # files of a ZIP that hold no conversations

    def _new(self) -> list[ConversationCount]:
        return [count for count in self.counts if count.outcome == NEW]

    @property
    def new(self) -> int:
        return len(self._new())

    @property
    def merged(self) -> int:
        """Conversations imported before to which the export adds messages."""
        return sum(1 for count in self.counts if count.outcome == MERGED)

    @property
    def merged_messages(self) -> int:
        return sum(count.messages for count in self.counts if count.outcome == MERGED)

    @property
    def duplicates(self) -> int:
        return sum(1 for count in self.counts if count.outcome == DUPLICATE)

    @property
    def empty(self) -> int:
        return sum(1 for count in self.counts if count.outcome == EMPTY)

    @property
    def messages(self) -> int:
        return sum(count.messages for count in self._new())

    @property
    def branch_points(self) -> int:
        return sum(count.branch_points for count in self._new())

    @property
    def missing_files(self) -> int:
        return sum(count.missing_files for count in self._new())

    @property
    def skipped(self) -> dict[str, int]:
        total: Counter = Counter()
        for count in self._new():
            total.update(count.skipped)
        return dict(total)

    @property
    def skipped_reasons(self) -> list[tuple[str, int]]:
        """The skipped nodes as (reason in words, how many), for the page."""
        return [(str(SKIP_REASONS[key]), number) for key, number in self.skipped.items()]

    @property
    def refused(self) -> bool:
        """Whether the import was refused (nothing was, or would be, written)."""
        return bool(self.failures)


@dataclass(frozen=True)
class Planned:
    index: int
    source: SourceFormat
    plan: ConversationPlan

    @property
    def key(self) -> tuple[str, str] | None:
        """What the duplicate check looks for; None when the source gives no id."""
        return (self.source.name, self.plan.source_id) if self.plan.source_id else None

    @property
    def title(self) -> str:
        return self.plan.fields.get("title", "")

    def count(self, outcome: str, *, messages: int | None = None) -> ConversationCount:
        plan = self.plan
        return ConversationCount(
            index=self.index,
            title=self.title,
            source=self.source.label,
            source_id=plan.source_id,
            outcome=outcome,
            messages=len(plan.messages) if messages is None else messages,
            branch_points=plan.branch_points,
            skipped=dict(plan.skipped),
            missing_files=plan.missing_files,
        )


def conversation_plan(
    index: int,
    source: SourceFormat,
    raw,
    models: ModelLookup,
    *,
    checked: bool = False,
    assets: ZipAssets | None = None,
) -> Planned | ConversationCount | ImportFailure:
    """One conversation of an upload read: its plan, or an EMPTY count (nothing in it to
    import), or the failure naming what is wrong with it. `checked`: its text was found
    storable by an earlier reading of the same file (the background import's first pass)."""
    title, source_id = conversation_identity(raw)
    try:
        plan = source.planner(raw, models)
        # The images the upload's ZIP carries, in place of their placeholders.
        assets_attach(plan, assets)
        if not checked:
            require_storable(plan)
    except ConversationSkipped as exc:
        return ConversationCount(index, title, source.label, source_id, EMPTY, reason=exc.reason)
    except ValidationFailed as exc:
        return ImportFailure(index, title, exc.message, source_id)
    return Planned(index, source, plan)


def conversation_identity(raw) -> tuple[str, str]:
    """The conversation's title and source id as an answer may show them, whatever is
    wrong with the rest of it."""
    if not isinstance(raw, dict):
        return "", ""
    chat = raw["chat"] if isinstance(raw.get("chat"), dict) else {}
    title = next(
        (value for value in (raw.get("title"), raw.get("name"), chat.get("title")) if value),
        "",
    )
    source_id = next((raw[name] for name in ("conversation_id", "id", "uuid") if raw.get(name)), "")
    # Shown in the answer, which must encode even when the title is what was wrong.
    title = storable_text(title[:200]) if isinstance(title, str) else ""
    return title, storable_text(source_id[:200]) if isinstance(source_id, str) else ""
