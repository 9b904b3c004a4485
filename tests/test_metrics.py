"""/metrics: real replies through a metrics-enabled daphne (and a Celery worker sharing its
multiprocess folder), scraped as Prometheus would, counted against the ledger."""

import asyncio
import os
import urllib.error
import urllib.request

import pytest
from django.db.models import Sum
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from conversations import background_jobs, services
from conversations.models import Message, MessageStatus, Role, UsageKind, UsageRecord
from tests.factories import ChatModelFactory, ConversationFactory, UserFactory
from tests.fake_provider import Reply
from tests.waits import wait_until
from tests.wsclient import LiveSocket

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "scrape-token-0123456789"


@pytest.fixture
def metrics_dir(tmp_path):
    folder = tmp_path / "metrics"
    folder.mkdir()
    return folder


@pytest.fixture
def metrics_env(metrics_dir):
    return {
        "METRICS_ENABLED": "true",
        "METRICS_TOKEN": TOKEN,
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }


@pytest.fixture
def metered_daphne(daphne, metrics_env):
    return lambda **env: daphne(**{**metrics_env, **env})


@pytest.fixture
def conversation(db):
    return ConversationFactory(owner=UserFactory(), chat_model=ChatModelFactory())


def scrape(server, token: str | None = TOKEN) -> dict[tuple[str, frozenset], float]:
    request = urllib.request.Request(f"{server.url}/metrics")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples, name: str, **labels) -> float:
    """The sum of `name`'s samples whose labels include `labels` (0 when none)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


def has(samples, name: str) -> bool:
    return any(n == name for n, _ in samples)


def _replies(conversation) -> list[Message]:
    return list(conversation.messages.filter(role=Role.ASSISTANT).order_by("id"))


def test_a_scrape_after_real_replies_counts_each_outcome_and_matches_the_ledger(
    metered_daphne, fake_provider, conversation
):
    server = metered_daphne()
    model = conversation.chat_model
    labels = {"provider": model.provider.slug, "model": model.name}
    socket = LiveSocket(server, conversation)

    async def ask(text: str, status: str) -> None:
        count = len(_replies_seen(socket))
        await socket.say(text)
        await socket.read_until(
            lambda page: len(_replies_seen(socket)) > count and page.last().status == status
        )

    async def scenario():
        async with socket:
            fake_provider.script(
                Reply(content="A complete answer."),
                # Three attempts (PROVIDER_MAX_RETRIES=2), each a 503: one failed reply.
                Reply(status=503),
                Reply(status=503),
                Reply(status=503),
                Reply(content="cut short here", finish_reason="length"),
                Reply(content="one two three four five six", disconnect_after=3),
            )
            await ask("first", MessageStatus.COMPLETE)
            await ask("second", MessageStatus.FAILED)
            await ask("third", MessageStatus.TRUNCATED)
            await ask("fourth", MessageStatus.INTERRUPTED)
            # While a slow reply streams: one in flight, one socket open.
            fake_provider.script(Reply(content=" ".join(["word"] * 40), tokens_per_second=20))
            await socket.say("fifth")
            await socket.read_until(
                lambda page: page.last() is not None and len(page.last().text) > 8
            )
            during = await asyncio.to_thread(scrape, server)
            await socket.read_until(
                lambda page: page.last().status == MessageStatus.COMPLETE, timeout=20
            )
        return during

    during = asyncio.run(scenario())
    assert value(during, "chatsite_replies_in_flight") == 1
    assert value(during, "chatsite_websockets_open") == 1

    wait_until(lambda: value(scrape(server), "chatsite_websockets_open") == 0, timeout=5)
    after = scrape(server)
    replies = "chatsite_replies_total"
    assert value(after, replies, outcome="complete", **labels) == 2
    assert value(after, replies, outcome="failed", error_class="provider_unavailable") == 1
    assert value(after, replies, outcome="truncated", **labels) == 1
    assert value(after, replies, outcome="interrupted", error_class="connection_lost") == 1
    assert value(after, replies) == 5
    assert value(after, "chatsite_replies_in_flight") == 0
    # Every reply that got a first token is in the TTFT histogram; all five in duration.
    assert value(after, "chatsite_reply_ttft_seconds_count", **labels) == 4
    assert value(after, "chatsite_reply_duration_seconds_count", **labels) == 5
    # Each 503 attempt, the SDK's retries included; the cut stream as a connection error.
    assert value(after, "chatsite_upstream_errors_total", status_class="5xx") == 3
    assert value(after, "chatsite_upstream_errors_total", status_class="connection") == 1

    ledger = UsageRecord.objects.filter(conversation=conversation, kind=UsageKind.CHAT).aggregate(
        prompt=Sum("prompt_tokens"), completion=Sum("completion_tokens"), cost=Sum("cost")
    )
    tokens = "chatsite_tokens_total"
    assert value(after, tokens, kind="chat", direction="input") == ledger["prompt"] > 0
    assert value(after, tokens, kind="chat", direction="output") == ledger["completion"] > 0
    cost = value(after, "chatsite_cost_total", currency=model.provider.currency)
    assert cost == pytest.approx(float(ledger["cost"])) and cost > 0

    assert value(after, "chatsite_http_responses_total", method="GET", status_class="2xx") >= 2
    assert has(after, "chatsite_http_request_duration_seconds_bucket")
    pid = str(server.process.pid)
    assert value(after, "chatsite_process_open_fds", pid=pid) > 5
    assert value(after, "chatsite_process_max_fds", pid=pid) >= value(
        after, "chatsite_process_open_fds", pid=pid
    )
    # Without a broker the queue is this process's own threads, empty now.
    assert value(after, "chatsite_job_queue_depth", queue="celery") == 0
    assert not any(
        name == "user" or name == "conversation" for _, labelset in after for name, _ in labelset
    ), "no per-user or per-conversation label"


def _replies_seen(socket) -> list:
    return [m for m in socket.page.messages.values() if m.role == "assistant"]


def test_a_workers_jobs_appear_in_the_web_processs_scrape(
    metered_daphne, celery_worker_factory, celery_broker, metrics_env, fake_provider, conversation
):
    """Multiprocess: the title job runs in a Celery worker; the daphne's scrape counts it."""
    celery_worker_factory(**metrics_env, TITLES_ENABLED="true")
    server = metered_daphne(CELERY_BROKER_URL=celery_broker, TITLES_ENABLED="true")
    fake_provider.script(Reply(content="An answer."), Reply(content="A short title"))
    socket = LiveSocket(server, conversation)

    async def scenario():
        async with socket:
            await socket.say("Tell me something")
            await socket.read_until(
                lambda page: (
                    page.last() is not None and page.last().status == MessageStatus.COMPLETE
                )
            )

    asyncio.run(scenario())
    wait_until(
        lambda: value(scrape(server), "chatsite_jobs_total", job="title", outcome="ok") == 1,
        timeout=30,
    )
    samples = scrape(server)
    # The title call's tokens, recorded by the worker, are in the same scrape.
    assert value(samples, "chatsite_tokens_total", kind="title", direction="output") > 0
    assert has(samples, "chatsite_job_queue_depth")
    assert value(samples, "chatsite_job_queue_depth", queue="context") == 0


def test_a_scrape_needs_the_token(metered_daphne):
    server = metered_daphne()
    for token in (None, "wrong"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            scrape(server, token=token)
        assert refused.value.code == 401
        assert refused.value.headers["WWW-Authenticate"].startswith("Bearer")


def test_metrics_are_off_unless_enabled(client, settings):
    settings.METRICS_ENABLED = False
    assert client.get("/metrics").status_code == 404


def test_without_a_token_only_internal_addresses_may_scrape(settings):
    settings.METRICS_ENABLED = True
    settings.METRICS_TOKEN = ""
    response = Client(REMOTE_ADDR="203.0.113.7").get("/metrics")
    assert response.status_code == 403


def test_without_a_token_an_internal_address_may_scrape(settings, monkeypatch, metrics_dir):
    settings.METRICS_ENABLED = True
    settings.METRICS_TOKEN = ""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    response = Client(REMOTE_ADDR="10.1.2.3").get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert f'chatsite_process_open_fds{{pid="{os.getpid()}"}}' in response.content.decode()


def test_a_worker_serves_its_own_metrics_on_its_port(
    celery_worker_factory, celery_broker, metrics_dir, fake_provider, conversation
):
    """A worker in a container of its own has no web process to be scraped through."""
    from tests.live_server import free_port

    port = free_port()
    celery_worker_factory(
        METRICS_ENABLED="true",
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        METRICS_WORKER_PORT=str(port),
        TITLES_ENABLED="true",
    )
    worker = type("Worker", (), {"url": f"http://127.0.0.1:{port}"})
    wait_until(lambda: _answers(worker.url), timeout=20)
    fake_provider.script(Reply(content="A title from the worker"))
    background_jobs.enqueue(
        background_jobs.TITLE_CONVERSATION,
        services.title_generate,
        conversation_id=conversation.pk,
    )
    wait_until(
        lambda: value(scrape(worker), "chatsite_jobs_total", job="title", outcome="ok") == 1,
        timeout=30,
    )


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(f"{url}/metrics", timeout=1).close()
        return True
    except OSError:
        return False
