"""HTML for messages, shared by the page, htmx responses and websocket pushes.

Presenters never query: they are given `selectors.MessageRead`s (or a live reply's state)
with everything already resolved, and `pages` composes the two.

Every piece of message UI comes from `conversations/_message.html`; the only hand-built HTML
is the tiny delta wrapper, which is sent up to 20 times a second per reply per socket and
must not cost a template render each time.
"""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from html import escape

from django.conf import settings
from django.template.loader import render_to_string
from django.utils.dateparse import parse_datetime
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from conversations import errors
from conversations.context import ContextGauge
from conversations.live.registry import LiveReply, ReplyState
from conversations.models import NO_SIBLINGS, MessageStatus, Role, Siblings
from conversations.rendering import is_json, render_json, render_markdown
from conversations.selectors import MessageRead
from conversations.streaming_markdown import UNKNOWN, Mark, renderers

STATUS_NOTES: dict[str, Promise] = {
    MessageStatus.TRUNCATED: _("Cut off: the reply reached its length limit."),
    MessageStatus.CANCELLED: _("Stopped."),
}


@dataclass(frozen=True)
class RecalledMessage:
    """An earlier message recall put into this reply's request, as the reply's record has it."""

    uuid: str
    excerpt: str
    at: datetime | None


@dataclass
class MessageView:
    """What the message template shows, from a saved message or a live reply."""

    uuid: str
    role: str
    status: str
    content: str
    reasoning: str = ""
    model_name: str = ""
    error_text: str = ""
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    # Of the prompt, what the provider served from its cache (billed at the cached rate);
    # of the completion, what the model spent thinking (what makes a reply expensive).
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    duration_ms: int | None = None
    time_to_first_token_ms: int | None = None
    # What this reply's upstream calls cost, in `currency` (None: nothing recorded).
    cost: Decimal | None = None
    currency: str = ""
    reasoning_ms: int | None = None
    # The reply was asked for a JSON object: shown pretty-printed, or flagged when invalid.
    json_mode: bool = False
    # Uuids of the images a user message carries, shown as thumbnails from /attachments/.
    images: list[str] = field(default_factory=list)
    # Its place among the other versions of its turn (edits, regenerations): "2 / 3".
    siblings: Siblings = NO_SIBLINGS
    # Earlier messages recalled into this reply's request, oldest first.
    recalled: list[RecalledMessage] = field(default_factory=list)
    # What this reply's request could not carry whole: earlier turns left out (no summary
    # covered them yet) and the characters cut from a message larger than the window.
    dropped_turns: int = 0
    cut_characters: int = 0
    cut_length: int = 0
    # Shown whole however long ("Show all" asked for it).
    show_all: bool = False
    # Why the model stopped ("length": its output limit cut it off, and it may continue).
    finish_reason: str = ""
    # A streaming reply's content as the live render has it (None: rendered here).
    live_html: str | None = None

    @property
    def is_final(self) -> bool:
        return self.status in MessageStatus.FINAL

    @property
    def is_assistant(self) -> bool:
        return self.role == Role.ASSISTANT

    @property
    def collapsed(self) -> bool:
        """A very long finished message shows its beginning and "Show all": a page of a
        long history stays light. A streaming reply shows everything it has."""
        length = len(self.content) + len(self.reasoning)
        return (
            self.is_final and not self.show_all and length > settings.MESSAGE_COLLAPSE_AFTER_CHARS
        )

    @property
    def shown_content(self) -> str:
        return self.content[: settings.MESSAGE_COLLAPSED_CHARS] if self.collapsed else self.content

    @property
    def shown_reasoning(self) -> str:
        return (
            self.reasoning[: settings.MESSAGE_COLLAPSED_CHARS] if self.collapsed else self.reasoning
        )

    @property
    def length(self) -> int:
        return len(self.content) + len(self.reasoning)

    @property
    def content_html(self) -> str:
        if self.json_mode and not self.collapsed:
            return render_json(self.content)
        return render_markdown(self.shown_content)

    @property
    def streaming_html(self) -> str:
        """A streaming reply's Markdown so far: the live render's, or the same rendered
        whole (conversations/streaming_markdown.py keeps the two equal)."""
        return self.live_html if self.live_html is not None else render_markdown(self.content)

    @property
    def json_invalid(self) -> bool:
        return self.json_mode and self.is_final and bool(self.content) and not is_json(self.content)

    @property
    def thought_seconds(self) -> str:
        return f"{self.reasoning_ms / 1000:.0f}" if self.reasoning_ms is not None else ""

    @property
    def can_retry(self) -> bool:
        return self.is_assistant and self.status in MessageStatus.RETRYABLE

    @property
    def can_regenerate(self) -> bool:
        """A finished reply can be asked for again (shown on the last reply only)."""
        return self.is_assistant and self.status == MessageStatus.COMPLETE

    @property
    def can_continue(self) -> bool:
        """Cut off by its output limit: it can go on (shown on the last reply only)."""
        return (
            self.is_assistant
            and self.status == MessageStatus.TRUNCATED
            and self.finish_reason == "length"
        )

    @property
    def status_note(self) -> str | Promise:
        if self.error_text and self.status == MessageStatus.TRUNCATED:
            return ""  # the error says where and why (cut at the server's reply limit)
        return STATUS_NOTES.get(self.status, "")

    @property
    def seconds(self) -> str:
        return f"{self.duration_ms / 1000:.1f}" if self.duration_ms else ""

    @property
    def ttft_seconds(self) -> str:
        ttft = self.time_to_first_token_ms
        return f"{ttft / 1000:.2f}" if ttft is not None else ""

    @property
    def tokens_per_second(self) -> str:
        """Output speed once tokens flowed: completion tokens over the time after the first."""
        if not self.completion_tokens or not self.duration_ms:
            return ""
        streaming_ms = self.duration_ms - (self.time_to_first_token_ms or 0)
        return f"{self.completion_tokens / (max(streaming_ms, 1) / 1000):.1f}"


def view_of_message(read: MessageRead) -> MessageView:
    """What the template shows of a message whose reads are all done (no query here)."""
    message = read.message
    return MessageView(
        uuid=str(message.uuid),
        role=message.role,
        status=message.status,
        content=message.content,
        reasoning=message.reasoning,
        model_name=message.model_name,
        error_text=errors.translated(message.error_text),
        prompt_tokens=message.prompt_tokens,
        completion_tokens=message.completion_tokens,
        cached_tokens=message.cached_tokens,
        reasoning_tokens=message.reasoning_tokens,
        duration_ms=message.duration_ms,
        time_to_first_token_ms=message.time_to_first_token_ms,
        cost=read.cost,
        currency=read.currency,
        reasoning_ms=message.reasoning_ms,
        json_mode=bool((message.context or {}).get("json_mode")),
        images=list(read.image_uuids),
        siblings=read.siblings,
        recalled=_recalled(message.context or {}),
        finish_reason=message.finish_reason,
        **_left_out(message.context or {}),
    )


def _left_out(context: dict) -> dict:
    cut = context.get("cut") or {}
    return {
        "dropped_turns": int(context.get("dropped_turns") or 0),
        "cut_characters": int(cut.get("characters") or 0) if isinstance(cut, dict) else 0,
        "cut_length": int(cut.get("length") or 0) if isinstance(cut, dict) else 0,
    }


def _recalled(context: dict) -> list[RecalledMessage]:
    entries = (context.get("recall") or {}).get("messages") or []
    return [
        RecalledMessage(
            uuid=str(entry.get("uuid", "")),
            excerpt=str(entry.get("excerpt", "")),
            at=parse_datetime(entry["at"]) if entry.get("at") else None,
        )
        for entry in entries
        if isinstance(entry, dict) and entry.get("uuid")
    ]


def views_of_messages(reads: list[MessageRead]) -> list[MessageView]:
    return [view_of_message(read) for read in reads]


def view_of_live(state: LiveReply | ReplyState) -> MessageView:
    return MessageView(
        uuid=state.uuid,
        role=Role.ASSISTANT,
        status=state.status,
        content=state.content,
        reasoning=state.reasoning,
        siblings=getattr(state, "siblings", None) or NO_SIBLINGS,
    )


def render_message(view: MessageView) -> str:
    return render_to_string("conversations/_message.html", {"message": view})


def render_messages_appended(reads: list[MessageRead]) -> str:
    inner = "".join(render_message(view) for view in views_of_messages(reads))
    return f'<div hx-swap-oob="beforeend:#messages">{inner}</div>'


def render_thread(page) -> str:
    """One window of a thread (a `pages.ThreadPage`): messages, dividers, scroll loaders."""
    return render_to_string("conversations/_thread.html", page.context())


def render_thread_replaced(page) -> str:
    """The whole thread swapped in on every socket when the branch on screen changes."""
    return f'<div id="messages" hx-swap-oob="innerHTML">{render_thread(page)}</div>'


def render_gauge(gauge: ContextGauge, *, oob: bool = False) -> str:
    """The header's context gauge; `oob`: swapped in by id wherever it arrives."""
    return render_to_string("conversations/_context_gauge.html", {"gauge": gauge, "oob": oob})


def render_live_message(state: LiveReply | ReplyState) -> tuple[str, Mark]:
    """A streaming reply whole, its content from the reply's shared live render, and where
    a page showing it stands in that render."""
    renderer = renderers.at(state.uuid, state.content)
    view = view_of_live(state)
    view.live_html = renderer.html()
    return render_message(view), renderer.mark()


def render_delta(
    state: LiveReply | ReplyState, reasoning: str, page: Mark = UNKNOWN
) -> tuple[str, Mark]:
    """What a page at `page` lacks of a streaming reply, as out-of-band swaps: the reasoning
    appended as text, the content's Markdown from the shared live render (one render per
    fragment, whatever the number of sockets)."""
    renderer = renderers.at(state.uuid, state.content)
    content = renderer.frame(state.uuid, page)
    if reasoning:
        content = (
            f'<div hx-swap-oob="beforeend:#m-{state.uuid}-reasoning">{escape(reasoning)}</div>'
            + content
        )
    return content, renderer.mark()


def forget_live(reply_uuid: str) -> None:
    """The reply has ended: its live render is no longer needed."""
    renderers.forget(reply_uuid)


def render_notice(text: str, *, level: str = "error") -> str:
    return render_to_string("conversations/_notice.html", {"text": text, "level": level})
