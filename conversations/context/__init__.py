"""Reads that decide what a request carries: the context window, summaries and their plan.

A request is: the system prompt (with the latest summary on the thread, framed as a summary
of the earlier conversation), then every sendable message after the summary's last covered
message, verbatim and once each, as far as the budget allows. When turns do not fit (a
summary is late or failed) the oldest are dropped and counted: the window never overflows.
The thread is walked newest first and only as far as needed, so the cost follows the size of
the context, not of the history.

`window` holds the budget and what a message costs and sends, `request` builds a reply's
request, `summary_plans` places, schedules and plans summaries (their writes are in
services/summaries.py), and `gauge` shows how full the next request's window is. Callers
import the names re-exported below (`from conversations.context import context_for_reply`).
"""

from conversations.context.gauge import ContextGauge, GaugePart, LastRequest, context_gauge
from conversations.context.request import (
    SUMMARY_HEADING,
    ReplyContext,
    RequestPlan,
    RequestThread,
    context_for_reply,
    request_plan,
)
from conversations.context.summary_plans import (
    SummaryPlacement,
    SummaryPlan,
    summary_boundaries,
    summary_chat_model,
    summary_covering,
    summary_due_after,
    summary_for_page,
    summary_latest,
    summary_placement_on_thread,
    summary_plan,
    summary_thresholds_passed,
)
from conversations.context.window import (
    CONTEXT_SAFETY_MARGIN,
    IMAGE_OMITTED,
    IMAGE_TOKENS,
    context_budget,
    context_window,
    message_content,
    message_tokens,
    reply_max_output,
    sendable,
)
