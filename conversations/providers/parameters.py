"""What each provider's chat endpoint accepts, in one table, with where it is documented.

profiles.py builds every body (replies and background calls alike) through this table, the
settings form shows its ranges, and tests/test_providers_parameters.py checks the body of
every preset model against it. When a provider changes its documentation, change the row
and its source here.
"""

from dataclasses import dataclass

from conversations.models import ChatModel

# Open ends of a range are kept this far inside: the providers take two decimals.
INSIDE_AN_OPEN_END = 0.01


@dataclass(frozen=True)
class Span:
    """A numeric range; an open end excludes its bound (Zhipu refuses temperature 0)."""

    low: float
    high: float
    low_open: bool = False
    high_open: bool = False

    @property
    def lowest(self) -> float:
        return self.low + INSIDE_AN_OPEN_END if self.low_open else self.low

    @property
    def highest(self) -> float:
        return self.high - INSIDE_AN_OPEN_END if self.high_open else self.high

    def clamp(self, value: float) -> float:
        return round(min(max(value, self.lowest), self.highest), 4)

    def __contains__(self, value: float) -> bool:
        return self.lowest <= value <= self.highest


@dataclass(frozen=True)
class Accepted:
    """One provider's (or model family's) documented chat parameters."""

    source: str
    temperature: Span | None  # None: refused
    top_p: Span | None
    max_stop: int  # stop sequences taken; 0: `stop` is refused
    output_limit: str  # the body field that caps the output
    # Whether response_format json_object may be combined with thinking.
    json_while_thinking: bool = True
    # Whether a call that is not streamed may think (DashScope's hybrid models: no).
    thinks_unstreamed: bool = True
    # Whether a thinking budget is honoured (the settings show it only then).
    thinking_budget: bool = False


OPENAI = Accepted(
    source="https://platform.openai.com/docs/api-reference/chat/create",
    temperature=Span(0, 2),
    top_p=Span(0, 1),
    max_stop=4,
    output_limit="max_tokens",
)
# o-series: temperature, top_p and stop are refused ("Unsupported parameter"); the output is
# capped by max_completion_tokens, reasoning included; the budget maps to reasoning_effort.
OPENAI_REASONING = Accepted(
    source="https://platform.openai.com/docs/guides/reasoning",
    temperature=None,
    top_p=None,
    max_stop=0,
    output_limit="max_completion_tokens",
    thinking_budget=True,
)
# deepseek-reasoner takes temperature and top_p without effect, and its max_tokens counts
# the reasoning too (guides/reasoning_model).
DEEPSEEK = Accepted(
    source="https://api-docs.deepseek.com/api/create-chat-completion",
    temperature=Span(0, 2),
    top_p=Span(0, 1, low_open=True),
    max_stop=16,
    output_limit="max_tokens",
)
# Qwen: temperature [0, 2), top_p (0, 1]; JSON mode is refused while thinking ("Json mode
# response is not supported when enable_thinking is true", json-mode page), and a call that
# is not streamed must not think ("parameter.enable_thinking must be set to false for
# non-streaming calls").
DASHSCOPE = Accepted(
    source=(
        "https://help.aliyun.com/zh/model-studio/use-qwen-by-calling-api, "
        "https://help.aliyun.com/zh/model-studio/json-mode, "
        "https://help.aliyun.com/zh/model-studio/deep-thinking"
    ),
    temperature=Span(0, 2, high_open=True),
    top_p=Span(0, 1, low_open=True),
    max_stop=4,
    output_limit="max_tokens",
    json_while_thinking=False,
    thinks_unstreamed=False,
    thinking_budget=True,
)
# GLM: temperature (0, 1], top_p (0, 1], a single stop word; thinking is a switch
# (thinking.type) with no budget.
ZHIPU = Accepted(
    source="https://docs.bigmodel.cn/api-reference/模型-api/对话补全",
    temperature=Span(0, 1, low_open=True),
    top_p=Span(0, 1, low_open=True),
    max_stop=1,
    output_limit="max_tokens",
)
# vLLM, SGLang, llama.cpp, Ollama: OpenAI's parameters; the thinking switch is the chat
# template's (chat_template_kwargs.enable_thinking), with no budget.
LOCAL = Accepted(
    source="https://docs.vllm.ai/en/latest/serving/openai_compatible_server.html",
    temperature=Span(0, 2),
    top_p=Span(0, 1, low_open=True),
    max_stop=4,
    output_limit="max_tokens",
)
BY_PROVIDER = {"openai": OPENAI, "deepseek": DEEPSEEK, "dashscope": DASHSCOPE, "zhipu": ZHIPU}


def is_openai_reasoner(chat_model: ChatModel) -> bool:
    return chat_model.provider.slug == "openai" and chat_model.supports_thinking


def accepted(chat_model: ChatModel) -> Accepted:
    """The parameters `chat_model`'s endpoint takes."""
    if is_openai_reasoner(chat_model):
        return OPENAI_REASONING
    return BY_PROVIDER.get(chat_model.provider.slug, LOCAL)
