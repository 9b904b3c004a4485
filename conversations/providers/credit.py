"""Provider answers that mean the account has run out of credit.

Each provider says it its own way: OpenAI a 429 with `insufficient_quota`, DeepSeek a 402
"Insufficient Balance", DashScope `Arrearage` (or its free tier spent, with "use free tier
only" on), Zhipu a 429 with code 1113 ("your account is in arrears"), one-api style gateways
`insufficient_user_quota`. None of them passes with time, so none is retried: the SDK
retries every 429, and `refuse_retry_when_out_of_credit` (a response hook on every client)
tells it not to with its own `x-should-retry: false` header.
"""

import json

import httpx2

OUT_OF_CREDIT_CODES = frozenset(
    {
        "insufficient_quota",  # OpenAI (code and type)
        "arrearage",  # DashScope
        "allocationquota.freetieronly",  # DashScope, its free quota spent
        "1113",  # Zhipu: account in arrears
        "insufficient_user_quota",  # one-api / new-api gateways
    }
)
# Providers that send only a sentence.
OUT_OF_CREDIT_WORDS = ("insufficient balance", "exceeded your current quota", "余额不足", "欠费")


def error_fields(body: object) -> tuple[str, str, str]:
    """(code, type, message) of an OpenAI-style error body: {"error": {...}} or the bare
    object some providers send."""
    body = body if isinstance(body, dict) else {}
    error = body.get("error", body)
    error = error if isinstance(error, dict) else {"message": error}
    return tuple(str(error.get(name) or "") for name in ("code", "type", "message"))  # type: ignore[return-value]


def is_out_of_credit(status: int, code: str, error_type: str, message: str) -> bool:
    if status == 402:  # Payment Required: DeepSeek, and gateways that follow HTTP
        return True
    if status not in (400, 403, 429):
        return False
    if code.lower() in OUT_OF_CREDIT_CODES or error_type.lower() in OUT_OF_CREDIT_CODES:
        return True
    lowered = message.lower()
    return any(words in lowered for words in OUT_OF_CREDIT_WORDS)


def _response_out_of_credit(response: httpx2.Response) -> bool:
    try:
        body = json.loads(response.content)
    except ValueError:
        return False
    return is_out_of_credit(response.status_code, *error_fields(body))


async def refuse_retry_when_out_of_credit(response: httpx2.Response) -> None:
    """An async client's response hook: only a 429 needs it (the SDK retries no other 4xx)."""
    if response.status_code == 429:
        await response.aread()
        if _response_out_of_credit(response):
            response.headers["x-should-retry"] = "false"


def refuse_retry_when_out_of_credit_sync(response: httpx2.Response) -> None:
    """The same hook for a synchronous client (summaries, titles, embeddings)."""
    if response.status_code == 429:
        response.read()
        if _response_out_of_credit(response):
            response.headers["x-should-retry"] = "false"
