"""A reply's run: server-side generation, independent of any socket.

A reply runs as an asyncio task of the server process that accepted the message. Sockets
come and go (reload, second tab, lost connection); the task keeps the whole text in memory
(live.registry) and hands each delta to the fan-out, which coalesces fragments (at most one
per reply per STREAM_FRAGMENT_INTERVAL, longer under load). One saver per process writes the
partial text of every live reply to the database each STREAM_SAVE_INTERVAL, in one statement
(it is also their heartbeat); each reply's final state is written once.
"""

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import AsyncGenerator
from typing import cast

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_noop

from conversations import services
from conversations.context import ReplyContext, context_for_reply
from conversations.errors import (
    ProviderConnectionLost,
    ProviderError,
    ProviderNotConfigured,
    ProviderTimeout,
    ReplyTooLong,
    StreamOptionsUnsupported,
)
from conversations.live import process, rendering
from conversations.live.fanout import fanout
from conversations.live.registry import LiveReply, registry
from conversations.live.saves import saver
from conversations.live.threads import on_worker_thread
from conversations.models import ChatModel, Message, MessageStatus
from conversations.observability import metrics
from conversations.providers import catalogue, requests, transport
from conversations.tokens import RawCount, estimate_tokens

log = logging.getLogger(__name__)


class ReplyRun:
    """One reply's generation: stream events in, fragments and saves out."""

    def __init__(
        self, live: LiveReply, reply: Message | None = None, claimed: ReplyContext | None = None
    ) -> None:
        self.live = live
        # The reply as the sender saved it, with its conversation and model: no reload.
        self.reply = reply
        # Its context, when the sender claimed the reply already (claim_on_send).
        self.claimed = claimed
        self.started_at = time.monotonic()
        # The wall clock of the same moment: the call is priced by the rates in force then.
        self.started_wall = timezone.now()
        self.first_token_at: float | None = None
        self.finish_reason = ""
        # The reply reached REPLY_MAX_CHARS and its stream was cut there.
        self.cut_at_limit = False
        self.usage: transport.Usage | None = None
        self.prompt_estimate = 0
        self.raw_prompt = RawCount()
        # A continuation starts from the reply's text (LiveReply.resume): what it had then.
        self.continues = bool(live.continued_at)
        self.earlier = live.content if self.continues else ""
        self.earlier_reasoning_length = live.reasoning_length

    # --- the run -----------------------------------------------------------------------

    async def run(self) -> None:
        reply = self.reply or await on_worker_thread(_load_reply)(self.live.reply_id)
        if reply is None:
            return
        try:
            outcome = await self._generate(reply)
        except asyncio.CancelledError:
            # Stopped before the stream began: nothing was generated, nothing was billed.
            outcome = self._outcome(MessageStatus.CANCELLED)
            outcome.called_upstream = False
        if outcome is not None:
            self.live.ending = True
            await self._finish(reply, outcome)

    async def _generate(self, reply: Message) -> services.CallOutcome | None:
        credentials = _credentials(reply)
        if not credentials:
            return self._failure(ProviderNotConfigured(), called_upstream=False)
        context = self.claimed or await on_worker_thread(_claim)(reply)
        if context is None:
            return None  # another generator claimed it first
        self.prompt_estimate = context.estimated_tokens
        self.raw_prompt = RawCount(context.raw_tokens, context.tokenizer)
        self.live.status = MessageStatus.STREAMING
        self.live.saved_at = time.monotonic()  # the claim was the reply's first heartbeat
        await fanout.publish_reply(self.live)
        saver.ensure_running()
        request = requests.reply_request(
            chat_model=cast(ChatModel, reply.chat_model),  # credentials found: it has one
            conversation=reply.conversation,
            credentials=credentials,
            messages=context.messages,
            continuing_from=self.earlier if self.continues else None,
        )
        outcome = await self._stream(reply, request)
        # Every HTTP request is a ledger record; all but the last failed and were retried.
        outcome.upstream_attempts = max(request.attempts, 1)
        return outcome

    async def _stream(self, reply: Message, request: transport.ChatRequest) -> services.CallOutcome:
        chat_model = cast(ChatModel, reply.chat_model)  # a reply being generated has one
        try:
            try:
                await self._consume(transport.stream_chat(request))
            except StreamOptionsUnsupported:
                await on_worker_thread(services.provider_remember_stream_usage)(
                    provider_id=chat_model.provider_id, supported=False
                )
                request.include_usage = False
                await self._consume(transport.stream_chat(request))
        except asyncio.CancelledError:
            return self._outcome(MessageStatus.CANCELLED)
        except (ProviderConnectionLost, ProviderTimeout) as exc:
            if self.live.content_length or self.live.reasoning_length:
                return self._outcome(MessageStatus.INTERRUPTED, error=exc)
            return self._failure(exc)
        except ProviderError as exc:
            return self._failure(exc)
        # The stream is over: what follows is bookkeeping that a stop must not cut short.
        self.live.ending = True
        if request.include_usage and chat_model.provider.stream_usage_supported is None:
            # Learn once whether this endpoint honours stream_options.include_usage.
            await on_worker_thread(services.provider_remember_stream_usage)(
                provider_id=chat_model.provider_id, supported=self.usage is not None
            )
        return self._completed()

    async def _consume(self, stream: AsyncGenerator[transport.StreamEvent, None]) -> None:
        live = self.live
        # Closed on leaving, however: cut at the limit, the provider sees the client go.
        async with contextlib.aclosing(stream) as events:
            async for event in events:
                if isinstance(event, transport.ContentDelta):
                    live.add_content(self._within_limit(event.text))
                elif isinstance(event, transport.ReasoningDelta):
                    live.add_reasoning(self._within_limit(event.text))
                elif isinstance(event, transport.Finish):
                    self.finish_reason = event.reason
                    continue
                else:
                    self.usage = event
                    continue
                if self.first_token_at is None:
                    self.first_token_at = time.monotonic()
                    await fanout.publish_reply(live)  # the first token never waits for a tick
                else:
                    await fanout.reply_grew(live)
                if self.cut_at_limit:
                    return

    def _within_limit(self, text: str) -> str:
        """`text`, or as much of it as REPLY_MAX_CHARS leaves room for."""
        room = settings.REPLY_MAX_CHARS - self.live.content_length - self.live.reasoning_length
        if len(text) <= room:
            return text
        self.cut_at_limit = True
        return text[: max(room, 0)]

    # --- outcomes ----------------------------------------------------------------------

    def _completed(self) -> services.CallOutcome:
        if self.cut_at_limit:
            return self._outcome(
                MessageStatus.TRUNCATED, error=ReplyTooLong(settings.REPLY_MAX_CHARS)
            )
        if not self.finish_reason:
            return self._outcome(
                MessageStatus.INTERRUPTED,
                error=ProviderConnectionLost(
                    gettext_noop("The provider ended the reply without finishing it.")
                ),
            )
        if self.finish_reason == "length":
            return self._outcome(MessageStatus.TRUNCATED)
        if not self.live.content_length:
            return self._outcome(
                MessageStatus.FAILED,
                error=ProviderError(gettext_noop("The model returned an empty reply.")),
                code="empty_reply",
            )
        return self._outcome(MessageStatus.COMPLETE)

    def _failure(self, exc: Exception, *, called_upstream: bool = True) -> services.CallOutcome:
        if self.continues and self.live.content == self.earlier:
            # A continuation that wrote nothing leaves the reply as it was, cut off (the
            # error said why), so it can be continued again.
            outcome = self._outcome(MessageStatus.TRUNCATED, error=exc)
            outcome.finish_reason = "length"
        else:
            outcome = self._outcome(MessageStatus.FAILED, error=exc)
        outcome.called_upstream = called_upstream
        return outcome

    def _outcome(
        self, status: str, *, error: Exception | None = None, code: str = ""
    ) -> services.CallOutcome:
        live, usage = self.live, self.usage
        elapsed_ms = int((time.monotonic() - self.started_at) * 1000)
        ttft = int((self.first_token_at - self.started_at) * 1000) if self.first_token_at else None
        outcome = services.CallOutcome(
            status=status,
            content=live.content,
            reasoning=live.reasoning,
            finish_reason=self.finish_reason,
            error_code=code or (getattr(error, "code", "error") if error else ""),
            error_text=str(error) if error else "",
            time_to_first_token_ms=ttft,
            duration_ms=elapsed_ms,
            reasoning_ms=live.reasoning_ms,
            started_at=self.started_wall,
            continues=self.continues,
        )
        if usage is not None:
            outcome.take_reported_usage(usage)
        else:
            written = (
                live.content[len(self.earlier) :],
                live.reasoning[self.earlier_reasoning_length :],
            )
            _estimate_usage(outcome, written, self.prompt_estimate)
        return outcome

    async def _finish(self, reply: Message, outcome: services.CallOutcome) -> None:
        # Text waiting for the next tick goes out now, not with the final state: under load
        # the final save can wait for a worker thread for a second, and those last words
        # with it.
        await fanout.flush_reply(self.live)
        _count(reply, outcome)
        finished = await on_worker_thread(_finish_and_render)(reply, outcome, self.raw_prompt)
        if finished is None:
            log.info("reply %s was deleted with its conversation while streaming", reply.uuid)
            return
        reply, self.live.final_html = finished
        self.live.status = reply.status
        await fanout.publish_reply(self.live)


def _count(reply: Message, outcome: services.CallOutcome) -> None:
    chat_model = reply.chat_model
    metrics.reply_ended(
        provider=chat_model.provider.slug if chat_model else "",
        model=chat_model.name if chat_model else "",
        outcome=outcome.status,
        error_class=outcome.error_code,
        ttft_ms=outcome.time_to_first_token_ms,
        duration_ms=outcome.duration_ms,
    )


def _credentials(reply: Message) -> catalogue.Credentials | None:
    chat_model = reply.chat_model
    return catalogue.provider_credentials(chat_model.provider) if chat_model else None


def claim_on_send(reply: Message) -> ReplyContext | None:
    """The generator's first step, for a sender already on a worker thread: the reply's
    context, and the reply claimed with it. Each trip to a worker thread costs the event loop
    a hand-over of the GIL, and a send made three (the send, this claim, the final save).
    None when the generator must take this step itself (it records a missing provider
    configuration as the reply's failure)."""
    if not _credentials(reply):
        return None
    return _claim(reply)


def _claim(reply: Message) -> ReplyContext | None:
    """The request's context, and the reply claimed for generation with it (one trip to a
    worker thread for both); None when another generator claimed it first."""
    context = context_for_reply(reply)
    if not services.reply_start(reply_id=reply.id, context=context.meta()):
        return None
    if context.recall:
        services.recall_query_usage_record(conversation=reply.conversation, recalled=context.recall)
    reply.context = context.meta()
    return context


def _finish_and_render(
    reply: Message, outcome: services.CallOutcome, raw_prompt: RawCount
) -> tuple[Message, str] | None:
    """The final state saved, what follows a reply, and the final HTML (one trip to a worker
    thread for all of it: the follow-up is a few checks unless a summary or title is due).
    None when the reply is gone: its conversation was deleted while it streamed."""
    # reply_finish also gives the in-memory reply its final fields: nothing to reload.
    if not services.reply_finish(reply_id=reply.id, outcome=outcome, reply=reply):
        theirs = _load_reply(reply.id)  # someone else ended it: show theirs
        if theirs is None:
            return None
        reply = theirs
    try:
        _after_reply(reply, outcome, raw_prompt)
    except Exception:  # calibration, summary or title: never at the cost of the reply
        log.exception("work after reply %s failed", reply.uuid)
    # Rendered after the calibration: the final HTML carries the header's context gauge,
    # counted as the next request will be.
    return reply, rendering.final_html(reply)


def _after_reply(reply: Message, outcome: services.CallOutcome, raw_prompt: RawCount) -> None:
    """Work that follows a saved reply, off the stream: calibration, summary, title and
    recall's index."""
    if outcome.usage_reported and outcome.prompt_tokens and reply.chat_model is not None:
        services.chat_model_calibrate(
            chat_model=reply.chat_model,
            raw=raw_prompt.parts,
            reported=outcome.prompt_tokens,
            tokenizer=raw_prompt.tokenizer,
        )
    services.summary_schedule_if_due(reply=reply)
    services.title_schedule_if_due(reply=reply)
    if reply.status in MessageStatus.REUSABLE and reply.content:
        # The question and its answer, into recall's index (a job: embedding takes a while).
        services.recall_schedule(message_ids=[m for m in (reply.parent_id, reply.id) if m])
    # Provider health: throttled per process and model, at once after a failure.
    services.provider_health_check(
        chat_model=reply.chat_model, force=reply.status == MessageStatus.FAILED
    )


def _load_reply(reply_id: int) -> Message | None:
    return (
        Message.objects.select_related("conversation", "chat_model__provider")
        .filter(pk=reply_id)
        .first()
    )


def _estimate_usage(
    outcome: services.CallOutcome, written: tuple[str, str], prompt_estimate: int
) -> None:
    """No usage arrived (stream cut, or a server that never sends it): count ourselves the
    call's `written` (content, reasoning)."""
    content, reasoning = written
    outcome.usage_reported = False
    outcome.prompt_tokens = prompt_estimate
    outcome.completion_tokens = estimate_tokens(content) + estimate_tokens(reasoning)
    outcome.reasoning_tokens = estimate_tokens(reasoning)


# --- starting a reply ------------------------------------------------------------------


def start_reply(
    *,
    reply_id: int,
    reply_uuid: str,
    conversation_uuid: str,
    reply: Message | None = None,
    claimed: ReplyContext | None = None,
    continuing: bool = False,
) -> LiveReply:
    """Begin generating a pending reply in this process; returns at once.

    `reply`, when the caller has it, should carry its conversation and chat model (with
    provider) loaded, which saves the generator a query; `claimed` is what claim_on_send
    returned for it. `continuing`: the reply (then required) was cut off by its length
    limit and goes on from its text (services.reply_continue)."""
    process.start()
    existing = registry.live_reply(reply_uuid)
    if existing is not None:
        return existing
    live = LiveReply(reply_id=reply_id, uuid=str(reply_uuid), conversation_uuid=conversation_uuid)
    if continuing and reply is not None:
        live.resume(reply.content, reply.reasoning)
    registry.register(live)
    # A fresh context: a task started from an HTTP request must not inherit that request's
    # asgiref executor, which is gone once the response is sent.
    run = _run(live, reply, claimed)
    live.task = asyncio.get_running_loop().create_task(run, context=contextvars.Context())
    return live


async def _run(live: LiveReply, reply: Message | None, claimed: ReplyContext | None) -> None:
    try:
        with metrics.reply_in_flight():
            await ReplyRun(live, reply, claimed).run()
    except asyncio.CancelledError:
        pass
    except Exception:
        log.exception("reply %s failed unexpectedly", live.uuid)
        await on_worker_thread(services.reply_interrupt_orphan)(reply_id=live.reply_id)
    finally:
        registry.unregister(live)
