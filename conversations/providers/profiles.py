"""Provider profiles: how one conversation's settings become one provider's request fields.

Pure functions of the catalogue row and the conversation, so the exact body each provider
receives is decided (and tested) in one place. Nothing here imports `openai`: the fields
returned go into the request body as they are (transport.py sends them through `extra_body`).

The thinking switch, per provider:
- dashscope: `enable_thinking` (hybrid models) and a `thinking_budget` whenever thinking is
  on; thinking-only models get the budget alone (they cannot be switched off).
- deepseek: `thinking: {"type": "enabled" | "disabled"}` on the V4 models (thinking by
  default; api-docs.deepseek.com/guides/thinking_mode); the older names decide by
  themselves: `deepseek-reasoner` always thinks, `deepseek-chat` never does.
- zhipu: `thinking: {"type": "enabled" | "disabled"}` on models that can think.
- openai: `reasoning_effort` (from the budget) on reasoning models, which also take
  `max_completion_tokens` instead of `max_tokens` and refuse temperature/top_p.
- local (vLLM, SGLang, llama.cpp, Ollama): `chat_template_kwargs.enable_thinking`, the switch
  Qwen3-style chat templates read; a server whose template ignores it just ignores it.
A model whose catalogue row says it cannot think gets no thinking field at all.

What each endpoint accepts (ranges, stop sequences, the output-limit field, JSON mode with
thinking) is the table in parameters.py; every body here is fitted to it. Background calls
(titles, summaries) go through the same table, with thinking off where it can be switched
off and room for it where it cannot.
"""

from dataclasses import dataclass

from conversations.models import ChatModel, Conversation
from conversations.providers.parameters import Span, accepted

DEFAULT_THINKING_BUDGET = 4096
MIN_THINKING_BUDGET = 128
# Budgets up to these many tokens map to OpenAI's effort levels; anything above is "high".
EFFORT_LEVELS = ((2048, "low"), (8192, "medium"))
JSON_INSTRUCTION = "Respond with a valid JSON object."
TEMPERATURE_RANGE = (0.0, 2.0)
TOP_P_RANGE = (0.0, 1.0)
MAX_STOP_SEQUENCES = 4
MAX_STOP_LENGTH = 64
# Background calls (summaries, titles) want a faithful, not a creative, answer.
BACKGROUND_TEMPERATURE = 0.2
# A model that cannot stop thinking spends its output limit on reasoning first: a
# background call on one gets this much more room, and this budget where one is taken.
BACKGROUND_REASONING_ROOM = 2048


@dataclass(frozen=True)
class Sampling:
    """The generation parameters a request carries (None: the provider's default)."""

    temperature: float | None
    top_p: float | None
    max_tokens: int | None
    stop: list[str]


def can_toggle_thinking(chat_model: ChatModel | None) -> bool:
    """Whether the UI offers the thinking switch: only models that may or may not think."""
    return bool(chat_model and chat_model.supports_thinking and not chat_model.always_thinks)


@dataclass(frozen=True)
class Controls:
    """What the interface offers for one model: only what its provider honours. The
    settings popover shows the parameters, the composer the thinking and JSON switches."""

    temperature: Span | None  # None: the endpoint refuses it, so it is not offered
    top_p: Span | None
    max_stop: int  # 0: no stop sequences
    max_output: int
    thinking_switch: bool  # thinking can be turned on and off
    always_thinks: bool
    # Offered only where a budget changes the request (DashScope, OpenAI's effort).
    thinking_budget: bool
    json_mode: bool
    # JSON mode on means a reply without thinking (DashScope refuses the two together).
    json_excludes_thinking: bool


def controls(chat_model: ChatModel) -> Controls:
    """The controls `chat_model` honours, from the same rules its request is built by."""
    rules = accepted(chat_model)
    return Controls(
        temperature=rules.temperature,
        top_p=rules.top_p,
        max_stop=rules.max_stop,
        max_output=chat_model.max_output,
        thinking_switch=can_toggle_thinking(chat_model),
        always_thinks=chat_model.always_thinks,
        thinking_budget=chat_model.supports_thinking and rules.thinking_budget,
        json_mode=chat_model.supports_json,
        json_excludes_thinking=(
            chat_model.supports_json
            and chat_model.supports_thinking
            and not rules.json_while_thinking
        ),
    )


def honoured_switches(
    chat_model: ChatModel | None, *, thinking: bool, json_mode: bool
) -> tuple[bool, bool]:
    """Thinking and JSON mode as `chat_model` can take them: a switch it cannot honour is
    off (the interface does not offer it for such a model)."""
    return (
        thinking and can_toggle_thinking(chat_model),
        json_mode and bool(chat_model and chat_model.supports_json),
    )


def thinks(chat_model: ChatModel, conversation: Conversation) -> bool:
    """Whether this reply is asked to think. Where JSON mode and thinking exclude each
    other (DashScope), JSON mode wins and the reply answers without thinking."""
    if chat_model.always_thinks:
        return True
    wanted = chat_model.supports_thinking and conversation.thinking_enabled
    return wanted and not json_turns_thinking_off(chat_model, conversation)


def json_turns_thinking_off(chat_model: ChatModel, conversation: Conversation) -> bool:
    return (
        conversation.json_mode
        and chat_model.supports_json
        and not accepted(chat_model).json_while_thinking
    )


def uses_json_mode(chat_model: ChatModel, conversation: Conversation) -> bool:
    """Whether the request asks for a JSON object. A model that cannot stop thinking, where
    the two exclude each other, is asked in words only (with_json_instruction)."""
    if not (conversation.json_mode and chat_model.supports_json):
        return False
    return accepted(chat_model).json_while_thinking or not chat_model.always_thinks


def thinking_budget(chat_model: ChatModel, conversation: Conversation) -> int:
    """The conversation's budget, or the default, never above what the model can write."""
    budget = conversation.thinking_budget or DEFAULT_THINKING_BUDGET
    return max(min(budget, chat_model.max_output), 1)


def _effort(budget: int) -> str:
    return next((level for ceiling, level in EFFORT_LEVELS if budget <= ceiling), "high")


def thinking_fields(chat_model: ChatModel, conversation: Conversation) -> dict:
    """Body fields that carry the thinking switch for this model's provider."""
    if not chat_model.supports_thinking:
        return {}
    on = thinks(chat_model, conversation)
    return _switch_fields(chat_model, on=on, budget=thinking_budget(chat_model, conversation))


def _switch_fields(chat_model: ChatModel, *, on: bool, budget: int) -> dict:
    slug = chat_model.provider.slug
    if slug == "dashscope":
        if chat_model.always_thinks:
            return {"thinking_budget": budget}
        return {"enable_thinking": on, "thinking_budget": budget} if on else {"enable_thinking": on}
    if slug == "deepseek" and chat_model.always_thinks:
        return {}  # deepseek-reasoner: the name decides, and it cannot stop
    if slug in ("zhipu", "deepseek"):
        return {"thinking": {"type": "enabled" if on else "disabled"}}
    if slug == "openai":
        # Reasoning models cannot stop reasoning; the switch off leaves their default effort.
        return {"reasoning_effort": _effort(budget)} if on else {}
    if slug == "local":
        return {"chat_template_kwargs": {"enable_thinking": on}}
    return {}


def request_fields(chat_model: ChatModel, conversation: Conversation) -> dict:
    """Every provider-specific body field of a chat request (thinking, output limits)."""
    fields = thinking_fields(chat_model, conversation)
    output_limit = accepted(chat_model).output_limit
    if output_limit != "max_tokens" and conversation.max_tokens:
        fields[output_limit] = min(conversation.max_tokens, chat_model.max_output)
    return fields


def sampling(chat_model: ChatModel, conversation: Conversation) -> Sampling:
    """The conversation's parameters as this model's endpoint accepts them: each value
    within its documented range, as many stop sequences as it takes, none it refuses."""
    rules = accepted(chat_model)
    max_tokens = conversation.max_tokens
    # A limit saved for an earlier, larger model is capped to this one's.
    capped = min(max_tokens, chat_model.max_output) if max_tokens else None
    return Sampling(
        temperature=_within(conversation.temperature, rules.temperature),
        top_p=_within(conversation.top_p, rules.top_p),
        max_tokens=capped if rules.output_limit == "max_tokens" else None,
        stop=list(conversation.stop or [])[: rules.max_stop],
    )


def _within(value: float | None, span: Span | None) -> float | None:
    return None if value is None or span is None else span.clamp(value)


@dataclass(frozen=True)
class BackgroundCall:
    """A background call's sampling and body fields (profiles decide them, as for replies)."""

    temperature: float | None
    max_tokens: int | None
    body_fields: dict


def background_call(chat_model: ChatModel, *, max_tokens: int) -> BackgroundCall:
    """A summary's or title's parameters: thinking off where the provider can switch it off
    (an unstreamed DashScope call must not think at all), and where it cannot, a small
    budget and room for the reasoning on top of `max_tokens`."""
    rules = accepted(chat_model)
    fields: dict = {}
    limit = max_tokens
    if chat_model.always_thinks:
        fields = _switch_fields(chat_model, on=True, budget=BACKGROUND_REASONING_ROOM)
        limit += BACKGROUND_REASONING_ROOM
    elif chat_model.supports_thinking:
        fields = _switch_fields(chat_model, on=False, budget=0)
    limit = min(limit, chat_model.max_output)
    if rules.output_limit != "max_tokens":
        fields[rules.output_limit] = limit
    return BackgroundCall(
        temperature=_within(BACKGROUND_TEMPERATURE, rules.temperature),
        max_tokens=limit if rules.output_limit == "max_tokens" else None,
        body_fields=fields,
    )


def with_json_instruction(messages: list[dict]) -> list[dict]:
    """JSON mode needs the word "json" somewhere in the messages (DashScope and OpenAI
    refuse the request otherwise): add a short instruction to the system message if absent."""
    if any("json" in _text_of(m.get("content")).lower() for m in messages):
        return messages
    if messages and messages[0].get("role") == "system":
        first = messages[0]
        return [{**first, "content": f"{first['content']}\n\n{JSON_INSTRUCTION}"}, *messages[1:]]
    return [{"role": "system", "content": JSON_INSTRUCTION}, *messages]


def _text_of(content: object) -> str:
    """The text of a message content: a string, or the text parts of a parts list (an image
    part's base64 data must not count as mentioning JSON)."""
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else []
    return " ".join(p.get("text", "") for p in parts if isinstance(p, dict))


# --- continuing a reply cut off by its length limit ----------------------------------

# Said to a model that has no way to take a partial answer as its own (sent in English, as
# JSON_INSTRUCTION: it is for the model, not the user).
CONTINUE_INSTRUCTION = (
    "Your previous answer was cut off by the length limit. Continue it exactly where it "
    "stopped, mid-sentence if need be: do not repeat anything, do not add a preamble."
)


@dataclass(frozen=True)
class Continuation:
    """How one provider is asked to go on with a partial answer: its messages, endpoint and
    body fields (the reply's own, changed where the shape needs it)."""

    shape: str  # "prefix" (DeepSeek), "partial" (DashScope) or "instruction" (the others)
    messages: list[dict]
    base_url: str
    body_fields: dict


def continuation(
    chat_model: ChatModel,
    *,
    messages: list[dict],
    partial: str,
    base_url: str,
    body_fields: dict,
) -> Continuation:
    """The request that continues `partial`, the reply's answer so far, after `messages`
    (the reply's `base_url` and `body_fields` otherwise).

    - deepseek: chat prefix completion (beta): the last message is the assistant's with
      `"prefix": true`, sent to the /beta endpoint (api-docs.deepseek.com, "Chat Prefix
      Completion").
    - dashscope: partial mode: the last message is the assistant's with `"partial": true`;
      only in non-thinking mode, so thinking is switched off, and a model that cannot stop
      thinking is asked in words instead (help.aliyun.com, "Partial Mode").
    - everyone else (Zhipu, OpenAI, local servers): the partial answer as the assistant's
      message, then a short user instruction to go on without repeating.
    """
    slug = chat_model.provider.slug
    if slug == "deepseek":
        last = {"role": "assistant", "content": partial, "prefix": True}
        return Continuation("prefix", [*messages, last], beta_base_url(base_url), body_fields)
    if slug == "dashscope" and not chat_model.always_thinks:
        last = {"role": "assistant", "content": partial, "partial": True}
        fields = {k: v for k, v in body_fields.items() if k != "thinking_budget"}
        if chat_model.supports_thinking:
            fields |= _switch_fields(chat_model, on=False, budget=0)
        return Continuation("partial", [*messages, last], base_url, fields)
    asked = [
        {"role": "assistant", "content": partial},
        {"role": "user", "content": CONTINUE_INSTRUCTION},
    ]
    return Continuation("instruction", [*messages, *asked], base_url, body_fields)


def beta_base_url(base_url: str) -> str:
    """DeepSeek's beta endpoint for a configured one: https://api.deepseek.com(/v1) ->
    https://api.deepseek.com/beta."""
    root = base_url.rstrip("/").removesuffix("/beta").removesuffix("/v1")
    return f"{root}/beta"
