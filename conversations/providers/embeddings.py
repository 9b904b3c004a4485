"""Embeddings through a provider's endpoint (recall's index and queries): a synchronous
client for worker threads and Celery tasks, failing in the same vocabulary as chat calls
(sdk_errors). Beside transport.py, the only other module that calls the `openai` SDK."""

import array
import base64
import binascii
import json
import os
import threading
from dataclasses import dataclass
from typing import Any

import httpx2
import openai
from django.conf import settings
from django.utils.translation import gettext_noop

from conversations.errors import ProviderRejected
from conversations.observability import metrics
from conversations.providers import credit, sdk_errors
from conversations.providers.catalogue import Credentials
from conversations.providers.transport import MALFORMED_RESPONSE


@dataclass(frozen=True, slots=True)
class EmbeddingResult:
    """The vectors of one embeddings call, one per input text and in the inputs' order."""

    vectors: list[list[float]]
    prompt_tokens: int
    # HTTP requests sent, the SDK's retries included (as ChatRequest.attempts).
    attempts: int = 1
    # False: the endpoint sent no usage (some local servers), and prompt_tokens is 0.
    usage_reported: bool = True


# Sync clients, one per endpoint (and retry count, which a client is built with): embedding
# calls come from worker threads and Celery tasks, which have no event loop. httpx2's pool is
# thread-safe, so every thread of a process shares one client's connections.
_sync_clients: dict[tuple[str, str, int], openai.OpenAI] = {}
_sync_clients_lock = threading.Lock()


def _forget_sync_clients() -> None:
    """A forked child (a Celery worker) opens its own connections: a socket shared with the
    parent would carry both processes' requests. The lock is new too, in case another
    thread held it at the fork."""
    global _sync_clients_lock
    _sync_clients.clear()
    _sync_clients_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_sync_clients)


def _sync_client(base_url: str, api_key: str) -> openai.OpenAI:
    retries = settings.PROVIDER_MAX_RETRIES
    with _sync_clients_lock:
        client = _sync_clients.get((base_url, api_key, retries))
        if client is None:
            client = _sync_clients[(base_url, api_key, retries)] = openai.OpenAI(
                api_key=api_key,
                base_url=base_url,
                max_retries=retries,
                timeout=_call_timeout(settings.PROVIDER_READ_TIMEOUT),
                http_client=openai.DefaultHttpxClient(
                    timeout=_call_timeout(settings.PROVIDER_READ_TIMEOUT),
                    event_hooks={
                        "response": [
                            credit.refuse_retry_when_out_of_credit_sync,
                            metrics.upstream_responded,
                        ]
                    },
                ),
            )
    return client


def _call_timeout(seconds: float) -> httpx2.Timeout:
    """`seconds` for each read and write of an attempt; its connect no longer than that."""
    return httpx2.Timeout(seconds, connect=min(seconds, settings.PROVIDER_CONNECT_TIMEOUT))


def embed_texts(
    credentials: Credentials,
    *,
    model: str,
    texts: list[str],
    dimensions: int | None,
    timeout: float,
) -> EmbeddingResult:
    """Embed `texts` in one call (synchronous: for worker threads and Celery tasks).

    At most the provider's batch limit of texts (EmbeddingPreset.max_batch; its `batches`
    splits a longer list), none empty. `dimensions`: the vector size to ask for and to
    expect back; None sends no size and takes what the model gives. `timeout` bounds each
    attempt's connect and every read and write; the SDK retries as for chat
    (PROVIDER_MAX_RETRIES, honouring Retry-After). Raises a ProviderError subclass.
    """
    if not texts:
        return EmbeddingResult(vectors=[], prompt_tokens=0, attempts=0)
    # "float", said outright: left out, the SDK asks for base64 and decodes it itself.
    options: dict[str, Any] = {"model": model, "input": texts, "encoding_format": "float"}
    if dimensions is not None:
        options["dimensions"] = dimensions
    client = _sync_client(credentials.base_url, credentials.api_key)
    try:
        # The raw response, read with json.loads: the SDK's model of a large batch (a
        # pydantic object per vector) costs more than the call's own parsing.
        response = client.embeddings.with_raw_response.create(
            **options, timeout=_call_timeout(timeout)
        )
        data = json.loads(response.text)
    except (openai.APIError, httpx2.TransportError) as exc:
        raise sdk_errors.mapped_error(exc, api_key=credentials.api_key) from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        data = None
    vectors = _embedding_vectors(data, count=len(texts), dimensions=dimensions)
    usage = (data.get("usage") if isinstance(data, dict) else None) or {}
    return EmbeddingResult(
        vectors=vectors,
        prompt_tokens=usage.get("prompt_tokens") or usage.get("total_tokens") or 0,
        attempts=response.retries_taken + 1,
        usage_reported=bool(usage),
    )


def _embedding_vectors(data: object, *, count: int, dimensions: int | None) -> list[list[float]]:
    """The vectors sorted by their `index` (the protocol does not promise the inputs'
    order), one for each of the `count` inputs, each of the size asked for."""
    items = data.get("data") if isinstance(data, dict) else None
    if not isinstance(items, list) or len(items) != count:
        raise ProviderRejected(MALFORMED_RESPONSE)
    try:
        ordered = sorted(items, key=lambda item: int(item["index"]))
        if [int(item["index"]) for item in ordered] != list(range(count)):
            raise ValueError("the indexes are not one for each input")
        vectors = [_floats(item["embedding"]) for item in ordered]
    except (KeyError, TypeError, ValueError, binascii.Error):
        raise ProviderRejected(MALFORMED_RESPONSE) from None
    if dimensions is not None and any(len(vector) != dimensions for vector in vectors):
        raise ProviderRejected(
            gettext_noop("The provider sent embeddings of another size than the one asked for.")
        )
    return vectors


def _floats(embedding: object) -> list[float]:
    # A string is base64 of float32s: what a server that ignores encoding_format sends by
    # default (decoded as the SDK decodes it).
    if isinstance(embedding, str):
        embedding = array.array("f", base64.b64decode(embedding, validate=True)).tolist()
    if not isinstance(embedding, list) or not embedding:
        raise ValueError("an embedding is a non-empty list of numbers")
    return embedding
