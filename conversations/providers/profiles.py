"""Provider profiles: how one conversation's settings become one provider's request fields.

Pure functions of the catalogue row and the conversation, so the exact body each provider
receives is decided (and tested) in one place. Nothing here imports `openai`: the fields
returned go into the request body as they are (transport.py sends them through `extra_body`).

The thinking switch, per provider:
- dashscope: `enable_thinking` (hybrid models) and a `thinking_budget` whenever thinking is
  on; thinking-only models get the budget alone (they cannot be switched off).
- deepseek: nothing: `deepseek-reasoner` always thinks, `deepseek-chat` never does.
- zhipu: `thinking: {"type": "enabled" | "disabled"}` on models that can think.
- openai: `reasoning_effort` (from the budget) on reasoning models, which also take
  `max_completion_tokens` instead of `max_tokens` and refuse temperature/top_p.
- local (vLLM, SGLang, llama.cpp, Ollama): `chat_template_kwargs.enable_thinking`, the switch
  Qwen3-style chat templates read; a server whose template ignores it just ignores it.
A model whose catalogue row says it cannot think gets no thinking field at all.
"""

from dataclasses import dataclass

from conversations.models import ChatModel, Conversation

DEFAULT_THINKING_BUDGET = 4096
MIN_THINKING_BUDGET = 128
# Budgets up to these many tokens map to OpenAI's effort levels; anything above is "high".
EFFORT_LEVELS = ((2048, "low"), (8192, "medium"))
JSON_INSTRUCTION = "Respond with a valid JSON object."
TEMPERATURE_RANGE = (0.0, 2.0)
TOP_P_RANGE = (0.0, 1.0)
MAX_STOP_SEQUENCES = 4
MAX_STOP_LENGTH = 64


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


def thinks(chat_model: ChatModel, conversation: Conversation) -> bool:
    """Whether this reply is asked to think."""
    if chat_model.always_thinks:
        return True
    return chat_model.supports_thinking and conversation.thinking_enabled


def uses_json_mode(chat_model: ChatModel, conversation: Conversation) -> bool:
    return conversation.json_mode and chat_model.supports_json


def thinking_budget(chat_model: ChatModel, conversation: Conversation) -> int:
    """The conversation's budget, or the default, never above what the model can write."""
    budget = conversation.thinking_budget or DEFAULT_THINKING_BUDGET
    return max(min(budget, chat_model.max_output), 1)


def _is_openai_reasoner(chat_model: ChatModel) -> bool:
    return chat_model.provider.slug == "openai" and chat_model.supports_thinking


def _effort(budget: int) -> str:
    return next((level for ceiling, level in EFFORT_LEVELS if budget <= ceiling), "high")


def thinking_fields(chat_model: ChatModel, conversation: Conversation) -> dict:
    """Body fields that carry the thinking switch for this model's provider."""
    if not chat_model.supports_thinking:
        return {}
    on = thinks(chat_model, conversation)
    budget = thinking_budget(chat_model, conversation)
    slug = chat_model.provider.slug
    if slug == "dashscope":
        if chat_model.always_thinks:
            return {"thinking_budget": budget}
        return {"enable_thinking": on, "thinking_budget": budget} if on else {"enable_thinking": on}
    if slug == "zhipu":
        return {"thinking": {"type": "enabled" if on else "disabled"}}
    if slug == "openai":
        # Reasoning models cannot stop reasoning; the switch off leaves their default effort.
        return {"reasoning_effort": _effort(budget)} if on else {}
    if slug == "local":
        return {"chat_template_kwargs": {"enable_thinking": on}}
    return {}  # deepseek: the model name decides


def request_fields(chat_model: ChatModel, conversation: Conversation) -> dict:
    """Every provider-specific body field of a chat request (thinking, output limits)."""
    fields = thinking_fields(chat_model, conversation)
    if _is_openai_reasoner(chat_model) and conversation.max_tokens:
        fields["max_completion_tokens"] = min(conversation.max_tokens, chat_model.max_output)
    return fields


def sampling(chat_model: ChatModel, conversation: Conversation) -> Sampling:
    """The conversation's parameters as this model accepts them."""
    if _is_openai_reasoner(chat_model):
        # o-series models reject temperature/top_p and want max_completion_tokens (above).
        return Sampling(None, None, None, list(conversation.stop or []))
    max_tokens = conversation.max_tokens
    return Sampling(
        temperature=conversation.temperature,
        top_p=conversation.top_p,
        # A limit saved for an earlier, larger model is capped to this one's.
        max_tokens=min(max_tokens, chat_model.max_output) if max_tokens else None,
        stop=list(conversation.stop or []),
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
