"""Shared fixtures: the fake provider on loopback, fast streaming settings, users."""

import os
from pathlib import Path

import pytest
from channels.layers import channel_layers

from conversations import background_jobs
from conversations.live import process
from tests.factories import ChatModelFactory, ConversationFactory, UserFactory
from tests.fake_provider import FakeProvider


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    # Generators query from worker threads; persistent connections there would outlive the
    # test and block dropping the test database.
    from django.conf import settings

    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0
    # Two runs at once on one server (two checkouts, or a run beside an editor's) each need a
    # test database of their own: TEST_DATABASE_SUFFIX names it apart.
    suffix = os.environ.get("TEST_DATABASE_SUFFIX", "")
    if suffix:
        test = settings.DATABASES["default"].setdefault("TEST", {})
        base = test.get("NAME") or f"test_{settings.DATABASES['default']['NAME']}"
        test["NAME"] = f"{base}_{suffix}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """A test's in-process jobs (indexing, titles, summaries queued after a reply) end
    before its fixtures are torn down: emptying the database under a job still writing
    deadlocks the flush."""
    if not background_jobs.wait_for_in_process_jobs(timeout=60):
        item.warn(pytest.PytestWarning("an in-process background job outlived its test"))
    # An async test's event loop closes in its teardown, cancelling what still runs: the stop
    # listener is ended by a message first (see process.stop_listening).
    runner = getattr(item, "funcargs", {}).get("_function_scoped_runner")
    if runner is not None:
        runner.run(process.stop_listening())
    yield


@pytest.fixture(scope="session")
def fake_provider_server():
    with FakeProvider() as server:
        yield server


@pytest.fixture
def fake_provider(fake_provider_server):
    fake_provider_server.reset()
    yield fake_provider_server
    fake_provider_server.reset()


@pytest.fixture(autouse=True)
def _provider_settings(settings, fake_provider_server):
    """The `local` provider points at the fake server; streams run with short intervals."""
    settings.PROVIDER_CREDENTIALS = {
        **settings.PROVIDER_CREDENTIALS,
        "local": {"api_key": "test-key", "base_url": fake_provider_server.base_url},
    }
    settings.PROVIDER_MAX_RETRIES = 2
    settings.PROVIDER_READ_TIMEOUT = 5.0
    settings.STREAM_SAVE_INTERVAL = 0.2
    settings.STREAM_STALE_AFTER = 3.0
    # Tests drive long conversations at machine speed; test_security.py tests the limit.
    settings.SEND_RATE_LIMIT_PER_MINUTE = 10_000
    # Title calls would take scripted replies meant for chat; tests/test_titles.py turns
    # them on.
    settings.TITLES_ENABLED = False
    # Embedding every reply would load the CPU under timing-sensitive tests, and recall
    # changes what requests carry; the recall tests turn it on (`recall_on`).
    settings.RECALL_ENABLED = False


@pytest.fixture(autouse=True)
def _fresh_cache(settings, request):
    """Rate-limit counters start at zero in every test: a private in-memory cache."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": request.node.nodeid,
        }
    }


@pytest.fixture(autouse=True)
def _fresh_live_state():
    """Each test has its own event loop: drop everything bound to the previous one."""
    process.reset()
    channel_layers.backends.clear()
    yield
    process.reset()
    channel_layers.backends.clear()


@pytest.fixture
def recall_on(settings):
    settings.RECALL_ENABLED = True
    return settings


@pytest.fixture
def user(db):
    return UserFactory(username="alice")


@pytest.fixture
def alice(user):
    """The account browser tests log in as (the same user as `user`)."""
    return user


@pytest.fixture
def other_user(db):
    return UserFactory(username="mallory")


@pytest.fixture
def chat_model(db):
    return ChatModelFactory()


@pytest.fixture
def conversation(user, chat_model):
    return ConversationFactory(owner=user, chat_model=chat_model)


# --- Browser tests ---------------------------------------------------------------------

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="session")
def daphne_server(django_db_setup, django_db_blocker, fake_provider_server):
    """A daphne process serving the test database, Redis layer and fake provider."""
    from django.db import connection

    from tests.live_server import DaphneServer

    server = DaphneServer(
        settings_dict=connection.settings_dict,
        provider_url=fake_provider_server.base_url,
        redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14"),
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def live_server_url(daphne_server):
    return daphne_server.url


@pytest.fixture(scope="module")
def browser():
    """Chromium for one test module.

    Playwright's sync API keeps an event loop in the main thread while it runs: Django's
    async-safety guard must be off meanwhile, and the loop must be gone before any asyncio
    test runs, hence module scope.
    """
    from playwright.sync_api import sync_playwright

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


@pytest.fixture
def browser_context(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    yield context
    context.close()


@pytest.fixture
def login(browser_context, live_server_url):
    """Log `user` in through the real login form; returns a logged-in page."""

    def _login(user, page=None):
        page = page or browser_context.new_page()
        page.goto(f"{live_server_url}/accounts/login/")
        page.fill("input[name=username]", user.username)
        page.fill("input[name=password]", "correct horse battery")
        page.click("button[type=submit]")
        page.wait_for_url(f"{live_server_url}/")
        return page

    return _login


def save_screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


@pytest.fixture
def api_token(user):
    from tests.factories import ApiTokenFactory

    return ApiTokenFactory(user=user)


@pytest.fixture
def api_client(api_token):
    """A REST client that authenticates as `user` with a personal API token."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_token.secret}")
    return client


# --- Celery ----------------------------------------------------------------------------

# Small enough that a test conversation needs several summaries; passed to the worker too,
# which must plan summaries with the same numbers as this process.
SUMMARY_TEST_SETTINGS = {
    "SUMMARY_TRIGGER_RATIO": "0.5",
    "SUMMARY_TRIGGER_TURNS": "200",
    "SUMMARY_MAX_TOKENS": "300",
}


@pytest.fixture
def summary_settings(settings):
    for name, value in SUMMARY_TEST_SETTINGS.items():
        setattr(settings, name, type(getattr(settings, name))(value))
    return settings


@pytest.fixture
def celery_broker(settings):
    """Tasks from this process go to a real Redis broker (its own database)."""
    from chatsite.celery import app
    from tests.celery_worker import flush_broker

    url = os.environ.get("TEST_CELERY_BROKER_URL", "redis://127.0.0.1:6379/12")
    flush_broker(url)
    previous = app.conf.broker_url
    settings.CELERY_BROKER_URL = url
    app.conf.broker_url = url
    yield url
    # The producer pool keeps its connections to this broker for the next test using it.
    app.conf.broker_url = previous


@pytest.fixture
def celery_worker_factory(celery_broker, fake_provider_server, transactional_db):
    """Start real workers (`-P threads -c 2`) on the test database; stopped afterwards."""
    from django.db import connection

    from tests.celery_worker import CeleryWorker

    workers = []

    def start(**env):
        worker = CeleryWorker(
            settings_dict=connection.settings_dict,
            broker_url=celery_broker,
            provider_url=fake_provider_server.base_url,
            **{**SUMMARY_TEST_SETTINGS, **env},
        ).start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()
