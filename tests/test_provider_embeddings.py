"""The embeddings half of the provider seam, through the fake provider's /v1/embeddings:
vectors, tokens and failures of `embeddings.embed_texts`, the embedding presets, and the
EMBEDDING_MODEL setting as `catalogue.embedding_choice` reads it."""

import importlib
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured

from conversations.errors import (
    ContextTooLong,
    ProviderAuthFailed,
    ProviderOutOfCredit,
    ProviderRateLimited,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnavailable,
)
from conversations.models import Provider
from conversations.providers import catalogue, embeddings, presets
from conversations.providers.catalogue import Credentials
from tests.fake_provider import (
    BAD_API_KEY,
    DEFAULT_EMBEDDING_DIMENSIONS,
    EmbeddingReply,
    embedding_vector,
    embedding_words,
)

TEXTS = ["The cat sat on the mat.", "A dog chased the ball.", "会议推迟到周五下午。"]


def _embed(fake_provider, texts=TEXTS, *, api_key="test-key", **fields):
    fields.setdefault("dimensions", 16)
    fields.setdefault("timeout", 5.0)
    credentials = Credentials(api_key=api_key, base_url=fake_provider.base_url)
    return embeddings.embed_texts(credentials, model="fake-embedder", texts=texts, **fields)


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def _assert_float32_equal(vectors: list[list[float]], expected: list[list[float]]) -> None:
    """Equal as float32 carries them (about seven digits), vector by vector."""
    assert [len(v) for v in vectors] == [len(v) for v in expected]
    flat = [x for vector in vectors for x in vector]
    assert flat == pytest.approx([x for vector in expected for x in vector], abs=1e-6)


def _closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture
def no_retries(settings):
    settings.PROVIDER_MAX_RETRIES = 0


# --- Vectors and tokens ----------------------------------------------------------------


def test_vectors_come_back_in_the_inputs_order_and_of_the_size_asked_for(fake_provider):
    fake_provider.script_embeddings(EmbeddingReply(reverse_order=True))
    result = _embed(fake_provider, dimensions=16)
    # JSON carries a float exactly.
    assert result.vectors == [embedding_vector(text, 16) for text in TEXTS]
    assert [len(vector) for vector in result.vectors] == [16, 16, 16]


def test_the_request_carries_the_model_the_texts_the_size_and_floats(fake_provider):
    _embed(fake_provider, dimensions=16)
    (request,) = fake_provider.embedding_requests
    assert request.json == {
        "model": "fake-embedder",
        "input": TEXTS,
        "dimensions": 16,
        "encoding_format": "float",
    }


def test_without_dimensions_none_is_asked_for_and_the_models_own_size_is_kept(fake_provider):
    result = _embed(fake_provider, dimensions=None)
    assert "dimensions" not in fake_provider.embedding_requests[0].json
    assert {len(vector) for vector in result.vectors} == {DEFAULT_EMBEDDING_DIMENSIONS}


def test_texts_sharing_words_come_out_closer_than_unrelated_ones(fake_provider):
    texts = ["the cat sat on the mat", "the cat sat on a mat", "quarterly revenue forecast"]
    cat, similar, unrelated = _embed(fake_provider, texts, dimensions=64).vectors
    assert _cosine(cat, similar) > 0.8
    assert _cosine(cat, similar) > _cosine(cat, unrelated) + 0.5


def test_the_tokens_the_provider_reports_are_returned_with_one_attempt(fake_provider):
    result = _embed(fake_provider)
    assert result.prompt_tokens == sum(len(embedding_words(text)) for text in TEXTS)
    assert result.usage_reported
    assert result.attempts == 1


def test_a_server_that_sends_no_usage_is_said_to_have_reported_none(fake_provider):
    fake_provider.script_embeddings(EmbeddingReply(usage=None))
    result = _embed(fake_provider)
    assert (result.prompt_tokens, result.usage_reported) == (0, False)
    assert len(result.vectors) == len(TEXTS)


def test_base64_vectors_from_a_server_that_ignores_the_encoding_asked_for_are_decoded(
    fake_provider,
):
    fake_provider.script_embeddings(EmbeddingReply(encoding="base64"))
    result = _embed(fake_provider, dimensions=16)
    _assert_float32_equal(result.vectors, [embedding_vector(text, 16) for text in TEXTS])


def test_an_empty_list_of_texts_makes_no_call(fake_provider):
    result = _embed(fake_provider, [])
    assert (result.vectors, result.prompt_tokens, result.attempts) == ([], 0, 0)
    assert fake_provider.embedding_requests == []


def test_calls_one_after_another_reuse_one_connection(fake_provider):
    _embed(fake_provider)
    _embed(fake_provider)
    first, second = fake_provider.embedding_requests
    assert first.client_port == second.client_port


def test_calls_from_several_threads_at_once_each_get_their_own_vectors(fake_provider):
    texts = [[f"thread {i} text"] for i in range(8)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda batch: _embed(fake_provider, batch), texts))
    for batch, result in zip(texts, results, strict=True):
        assert result.vectors == [embedding_vector(batch[0], 16)]


# --- Failures ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, ProviderAuthFailed),
        (403, ProviderAuthFailed),
        (429, ProviderRateLimited),
        (500, ProviderUnavailable),
        (503, ProviderUnavailable),
        (400, ProviderRejected),
    ],
)
def test_an_error_status_becomes_our_own_error(fake_provider, no_retries, status, error):
    fake_provider.script_embeddings(EmbeddingReply(status=status))
    with pytest.raises(error):
        _embed(fake_provider)


def test_a_refused_key_is_an_auth_failure(fake_provider):
    with pytest.raises(ProviderAuthFailed):
        _embed(fake_provider, api_key=BAD_API_KEY)
    assert len(fake_provider.embedding_requests) == 1, "a 401 is never retried"


def test_a_refusal_says_the_providers_words_without_the_key(fake_provider, no_retries):
    key = "sk-embedding-key-0123456789"
    message = f"Invalid input for key {key}: dimensions not supported"
    fake_provider.script_embeddings(EmbeddingReply(status=400, error_message=message))
    with pytest.raises(ProviderRejected) as refused:
        _embed(fake_provider, api_key=key)
    assert "dimensions not supported" in refused.value.message
    assert key not in refused.value.message


def test_an_input_beyond_the_models_context_is_too_long(fake_provider, no_retries):
    message = "This model's maximum context length is 8192 tokens, however you requested 9000."
    fake_provider.script_embeddings(EmbeddingReply(status=400, error_message=message))
    with pytest.raises(ContextTooLong):
        _embed(fake_provider)


def test_a_rate_limit_is_waited_out_and_retried_then_counted(fake_provider):
    limited = EmbeddingReply(status=429, headers={"Retry-After": "0"})
    fake_provider.script_embeddings(limited)
    result = _embed(fake_provider)
    assert len(fake_provider.embedding_requests) == 2
    assert result.attempts == 2
    assert len(result.vectors) == len(TEXTS)


def test_an_account_out_of_credit_is_said_so_and_not_retried(fake_provider):
    spent = EmbeddingReply(
        status=429, error_code="insufficient_quota", headers={"Retry-After": "0"}
    )
    fake_provider.script_embeddings(spent)
    with pytest.raises(ProviderOutOfCredit):
        _embed(fake_provider)
    assert len(fake_provider.embedding_requests) == 1


def test_a_slow_server_beyond_the_timeout_is_a_timeout(fake_provider, no_retries):
    fake_provider.script_embeddings(EmbeddingReply(delay=3.0))
    started = time.monotonic()
    with pytest.raises(ProviderTimeout):
        _embed(fake_provider, timeout=0.3)
    assert time.monotonic() - started < 2.0


def test_a_slow_server_within_the_timeout_is_waited_for(fake_provider, no_retries):
    fake_provider.script_embeddings(EmbeddingReply(delay=0.3))
    assert len(_embed(fake_provider, timeout=2.0).vectors) == len(TEXTS)


def test_a_server_that_is_not_there_is_unavailable(no_retries):
    credentials = Credentials(api_key="test-key", base_url=_closed_port_url())
    with pytest.raises(ProviderUnavailable):
        embeddings.embed_texts(
            credentials, model="fake-embedder", texts=["hi"], dimensions=None, timeout=2.0
        )


def test_a_connection_dropped_before_the_answer_is_unavailable(fake_provider, no_retries):
    fake_provider.script_embeddings(EmbeddingReply(disconnect=True))
    with pytest.raises(ProviderUnavailable):
        _embed(fake_provider)


def test_vectors_of_another_size_than_asked_for_are_refused(fake_provider):
    fake_provider.script_embeddings(EmbeddingReply(dimensions=4))
    with pytest.raises(ProviderRejected, match="size"):
        _embed(fake_provider, dimensions=16)


# --- Presets -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("slug", "name", "currency", "price", "dimensions", "max_batch"),
    [
        ("dashscope", "text-embedding-v4", "CNY", "0.5", 1024, 10),
        ("zhipu", "embedding-3", "CNY", "0.5", 1024, 64),
        ("openai", "text-embedding-3-small", "USD", "0.02", 1536, 2048),
        ("bundled", "multilingual-e5-small", "USD", "0", 384, 32),
    ],
)
def test_embedding_presets_carry_price_size_and_batch_limit(
    slug, name, currency, price, dimensions, max_batch
):
    preset = presets.embedding_preset(slug, name)
    assert preset is not None
    assert (preset.currency, preset.input_price) == (currency, Decimal(price))
    assert (preset.dimensions, preset.max_batch) == (dimensions, max_batch)


def test_any_model_of_a_local_server_is_free_and_of_the_size_it_gives():
    preset = presets.embedding_preset("local", "nomic-embed-text")
    assert preset is not None
    assert (preset.name, preset.input_price, preset.dimensions) == (
        "nomic-embed-text",
        Decimal(0),
        None,
    )


def test_deepseek_and_unknown_models_have_no_embedding_preset():
    assert presets.embedding_preset("deepseek", "deepseek-chat") is None
    assert presets.embedding_preset("dashscope", "qwen-plus") is None
    assert "deepseek" not in presets.embedding_providers()


def test_each_preset_is_priced_in_its_providers_currency():
    currencies = {p.slug: p.currency for p in presets.PROVIDER_PRESETS}
    for preset in presets.EMBEDDING_PRESETS:
        assert preset.currency == currencies[preset.provider_slug], preset.name


def test_each_preset_size_has_a_vector_index():
    recall = importlib.import_module("conversations.migrations.0008_recall")
    sizes = [p.dimensions for p in [presets.BUNDLED_EMBEDDING, *presets.EMBEDDING_PRESETS]]
    assert set(sizes) <= set(recall.VECTOR_SIZES)


def test_a_long_list_is_cut_into_the_providers_batches_in_order():
    preset = presets.embedding_preset("dashscope", "text-embedding-v4")
    assert preset is not None
    texts = [f"text {i}" for i in range(25)]
    batches = preset.batches(texts)
    assert [len(batch) for batch in batches] == [10, 10, 5]
    assert [text for batch in batches for text in batch] == texts


# --- EMBEDDING_MODEL -----------------------------------------------------------------


def test_provider_and_model_splits_at_the_first_slash():
    assert catalogue.provider_and_model("local/BAAI/bge-m3") == ("local", "BAAI/bge-m3")
    assert catalogue.provider_and_model(" dashscope/text-embedding-v4 ") == (
        "dashscope",
        "text-embedding-v4",
    )
    for malformed in ("", "dashscope", "/text-embedding-v4", "dashscope/"):
        assert catalogue.provider_and_model(malformed) is None


@pytest.mark.parametrize("value", ["", "  ", "bundled/multilingual-e5-small"])
def test_the_bundled_embedder_is_the_default(settings, value):
    settings.EMBEDDING_MODEL = value
    choice = catalogue.embedding_choice()
    assert choice.bundled
    assert choice.credentials is None
    assert choice.qualified_name == "bundled/multilingual-e5-small"
    assert choice.preset.dimensions == 384


def test_a_provider_model_comes_with_its_preset_and_credentials(settings, db):
    settings.PROVIDER_CREDENTIALS = {
        **settings.PROVIDER_CREDENTIALS,
        "dashscope": {"api_key": "sk-dashscope", "base_url": ""},
    }
    settings.EMBEDDING_MODEL = "dashscope/text-embedding-v4"
    choice = catalogue.embedding_choice()
    assert not choice.bundled
    assert (choice.provider_slug, choice.model) == ("dashscope", "text-embedding-v4")
    assert choice.preset.max_batch == 10
    assert choice.credentials == Credentials(
        api_key="sk-dashscope", base_url="https://dashscope.aliyuncs.com/compatible-mode/v1"
    )
    assert "sk-dashscope" not in repr(choice)


def test_a_local_embedding_model_is_embedded_by_the_local_server(settings, db, fake_provider):
    settings.EMBEDDING_MODEL = "local/fake-embedder"
    choice = catalogue.embedding_choice()
    assert choice.credentials is not None
    result = embeddings.embed_texts(
        choice.credentials,
        model=choice.model,
        texts=TEXTS,
        dimensions=choice.preset.dimensions,
        timeout=5.0,
    )
    assert fake_provider.embedding_requests[0].json["model"] == "fake-embedder"
    assert {len(v) for v in result.vectors} == {DEFAULT_EMBEDDING_DIMENSIONS}


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("dashscope", "must be <provider>/<model>"),
        ("/text-embedding-v4", "must be <provider>/<model>"),
        ("openai/", "must be <provider>/<model>"),
        ("deepseek/deepseek-chat", "'deepseek', which offers no embedding models"),
        ("nowhere/some-model", "'nowhere', which offers no embedding models"),
        ("dashscope/qwen-plus", "not an embedding model of dashscope"),
        ("bundled/multilingual-e5-large", "not an embedding model of bundled"),
    ],
)
def test_a_value_naming_no_embedding_model_is_refused(settings, db, value, said):
    settings.EMBEDDING_MODEL = value
    with pytest.raises(ImproperlyConfigured, match="EMBEDDING_MODEL") as refused:
        catalogue.embedding_choice()
    assert said in str(refused.value)


@pytest.mark.parametrize(
    ("slug", "value", "variable"),
    [
        ("openai", "openai/text-embedding-3-small", "OPENAI_API_KEY"),
        ("zhipu", "zhipu/embedding-3", "ZHIPUAI_API_KEY"),
        ("local", "local/fake-embedder", "LOCAL_BASE_URL"),
    ],
)
def test_a_provider_not_enabled_is_refused_naming_its_variable(settings, db, slug, value, variable):
    settings.PROVIDER_CREDENTIALS = {
        **settings.PROVIDER_CREDENTIALS,
        slug: {"api_key": "", "base_url": ""},
    }
    settings.EMBEDDING_MODEL = value
    with pytest.raises(ImproperlyConfigured, match=f"not enabled: set {variable}"):
        catalogue.embedding_choice()


def test_a_provider_an_admin_removed_from_the_catalogue_is_refused(settings, db):
    Provider.objects.filter(slug="openai").delete()
    settings.EMBEDDING_MODEL = "openai/text-embedding-3-small"
    with pytest.raises(ImproperlyConfigured, match="not in the catalogue"):
        catalogue.embedding_choice()
