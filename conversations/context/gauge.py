"""The chat header's context gauge: how full the model's window is for the next request on
the branch on screen, part by part, and what the conversation and that branch have cost.

The parts are counted by the request builder's own plan (request.py `request_plan`), so
they are what the next request carries as the thread stands now: the system prompt, the
summary, the verbatim turns that fit, and the room kept for the reply. The next message
comes on top, and may push the oldest turn out. Recalled excerpts depend on that message,
so the gauge shows as many as the last request carried, and only when the next request
recalls at all (part of the branch is summarised or left out).

The last request's size is the provider's reported prompt_tokens where it reported them
(they are what the estimate is calibrated from), else the estimate, and says which.
"""

from dataclasses import dataclass, field

from conversations import selectors, usage
from conversations.context.request import RequestPlan, request_plan
from conversations.context.window import context_budget, context_window, reply_max_output
from conversations.models import Conversation, Message, MessageStatus, Role

# The parts of the bar, in the order a request has them (the reply's room last).
PART_KINDS = ("system", "summary", "recall", "turns", "output")
# From this share of the window on, the gauge says the window is nearly full, then full.
HIGH_PERCENT = 75
FULL_PERCENT = 95
# The narrowest a non-empty part is drawn, in percent of the bar: a short chat's turns are
# a sliver of a 128k window, yet the bar should show them (their numbers are in the title).
MIN_PART_PERCENT = 2.0


@dataclass(frozen=True)
class GaugePart:
    """One segment of the bar: its tokens, and where it sits, in percent of the window."""

    kind: str
    tokens: int
    offset: float
    percent: float


@dataclass(frozen=True)
class LastRequest:
    """The prompt of the request of the reply the branch ends with."""

    tokens: int
    # The provider reported `tokens`; False: they are our estimate.
    reported: bool
    # Our estimate for that request, as its reply recorded it.
    estimated: int


@dataclass
class ContextGauge:
    window: int
    # Prompt tokens a request may use: the window less the reply's room, with a margin.
    budget: int
    # The reply's room: the conversation's max_tokens, or the model's max_output.
    output: int
    system_prompt: int = 0
    summary: int = 0
    # As many as the last request's excerpts, when the next request recalls; at most
    # `recall_budget`.
    recalled: int = 0
    recall_budget: int = 0
    turns: int = 0
    turns_sent: int = 0
    # Sendable turns that no longer fit (no summary covers them yet).
    dropped_turns: int = 0
    last_request: LastRequest | None = None
    costs: usage.ConversationCosts = field(default_factory=usage.ConversationCosts)

    @property
    def prompt(self) -> int:
        return self.system_prompt + self.summary + self.recalled + self.turns

    @property
    def used(self) -> int:
        return self.prompt + self.output

    @property
    def free(self) -> int:
        return max(self.window - self.used, 0)

    @property
    def percent(self) -> int:
        return round(100 * self.used / self.window) if self.window else 0

    @property
    def level(self) -> str:
        """ "ok", "high" or "full": how the gauge is coloured."""
        if self.percent >= FULL_PERCENT:
            return "full"
        return "high" if self.percent >= HIGH_PERCENT else "ok"

    @property
    def parts(self) -> list[GaugePart]:
        """The non-empty parts, each placed after the ones before it, at least
        MIN_PART_PERCENT wide; scaled to fit the bar when they add up to more."""
        shown = [(kind, self._tokens_of(kind)) for kind in PART_KINDS]
        shown = [(kind, tokens) for kind, tokens in shown if tokens > 0]
        widths = [max(100 * tokens / max(self.window, 1), MIN_PART_PERCENT) for _, tokens in shown]
        scale = min(100 / sum(widths), 1) if widths else 1
        placed, offset = [], 0.0
        for (kind, tokens), width in zip(shown, widths, strict=True):
            percent = round(width * scale, 2)
            placed.append(GaugePart(kind, tokens, round(offset, 2), percent))
            offset += percent
        return placed

    def _tokens_of(self, kind: str) -> int:
        return {
            "system": self.system_prompt,
            "summary": self.summary,
            "recall": self.recalled,
            "turns": self.turns,
            "output": self.output,
        }[kind]


def context_gauge(conversation: Conversation) -> ContextGauge:
    """The gauge of the branch on screen, from the conversation as the database has it now
    (a socket's copy is as old as the socket; the model's calibration moves with replies).
    A bounded number of queries, whatever the length of the history."""
    conversation = selectors.conversation_fresh(conversation)
    leaf = selectors.thread_leaf(conversation)
    gauge = ContextGauge(
        window=context_window(conversation),
        budget=context_budget(conversation),
        output=reply_max_output(conversation),
    )
    # No message has id 0: an empty thread plans a request of the system prompt alone.
    plan = request_plan(conversation, leaf_id=leaf.id if leaf else 0)
    _fill(gauge, plan, leaf)
    gauge.costs = usage.conversation_costs(conversation, branch_ids=_branch_ids(conversation, leaf))
    return gauge


def _fill(gauge: ContextGauge, plan: RequestPlan, leaf: Message | None) -> None:
    gauge.system_prompt = plan.system_tokens(summary=False)
    gauge.summary = plan.system_tokens() - gauge.system_prompt
    gauge.turns = plan.turns_tokens
    gauge.turns_sent = len(plan.turns)
    gauge.dropped_turns = plan.context.dropped_turns
    gauge.recall_budget = plan.recall_budget
    meta = _request_meta(leaf)
    if plan.recalls:
        recalled = int((meta.get("recall") or {}).get("tokens") or 0)
        gauge.recalled = min(recalled, plan.recall_budget)
    if meta and leaf is not None:
        gauge.last_request = _last_request(leaf, meta)


def _request_meta(leaf: Message | None) -> dict:
    """What the reply the branch ends with recorded of its request ({}: none was made)."""
    if leaf is None or leaf.role != Role.ASSISTANT or not isinstance(leaf.context, dict):
        return {}
    return leaf.context


def _last_request(reply: Message, meta: dict) -> LastRequest:
    estimated = int(meta.get("estimated_tokens") or 0)
    reported = (
        usage.reported_prompt_tokens(reply.id) if reply.status in MessageStatus.FINAL else None
    )
    if reported is None:
        return LastRequest(tokens=estimated, reported=False, estimated=estimated)
    return LastRequest(tokens=reported, reported=True, estimated=estimated)


def _branch_ids(conversation: Conversation, leaf: Message | None) -> list[int] | None:
    """The messages on the branch on screen; None when every message is on it."""
    if not conversation.has_branches:
        return None
    return selectors.thread_path_ids(conversation, leaf_id=leaf.id) if leaf else []
