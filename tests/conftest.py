"""Shared fixtures: the fake provider on loopback, fast streaming settings, users."""

import os
from contextlib import contextmanager
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


def _flush_retried_on_deadlock(handle):
    """The live server is another process: a page's socket may still be reading (a sidebar
    re-read on a user event) while the test empties the database. Postgres then ends one of
    the two as a deadlock victim; when that is the flush, it runs again once the reader is
    done, as any deadlock victim is retried."""
    import time

    def handle_retried(*args, **options):
        for attempt in range(3):
            try:
                return handle(*args, **options)
            except Exception as exc:  # the flush wraps the database's error in a CommandError
                if attempt == 2 or "deadlock detected" not in str(exc.__cause__ or exc):
                    raise
                time.sleep(0.5)

    return handle_retried


def _retry_flushes() -> None:
    from django.core.management.commands import flush

    flush.Command.handle = _flush_retried_on_deadlock(flush.Command.handle)


_retry_flushes()


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


class _SharedRows:
    def __init__(self, blocker):
        self._blocker = blocker

    @contextmanager
    def writing(self):
        """Database access for the fixture writing the shared rows. Their deferred foreign
        keys are checked on the way out, once: left pending, they would be checked again
        at the end of every test (a savepoint rolled back restores them)."""
        from django.db import connection

        with self._blocker.unblock():
            yield
            connection.check_constraints()


def _commits(item) -> bool:
    marker = item.get_closest_marker("django_db")
    kwargs = {}
    if marker:
        kwargs = dict(zip(("transaction", "reset_sequences"), marker.args, strict=False))
        kwargs.update(marker.kwargs)
    fixtures = getattr(item, "fixturenames", ())
    return bool(
        kwargs.get("transaction")
        or kwargs.get("reset_sequences")
        or "transactional_db" in fixtures
        or "live_server" in fixtures
    )


def _shared_transaction(request, django_db_blocker, sharing):
    """A transaction around a module's or a class's tests, for rows they share (Django's
    setUpTestData, for pytest): a fixture of that scope writes them once inside
    `with shared.writing():` and each test's `db` transaction is a savepoint within, so
    whatever a test changes is rolled back after it as before, and nothing is ever
    committed; the shared rows go with the rollback after the last test. Every test of
    the module (class) sees them: for tests that read rows they did not write.

    Only where every test uses `db`: a `transactional_db` test must commit for real and
    flushes the tables afterwards, which cannot happen inside it."""
    from django.db import transaction

    for item in request.session.items:
        if sharing(item) and _commits(item):
            raise pytest.UsageError(f"{item.nodeid} commits: it cannot share rows")
    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
    yield _SharedRows(django_db_blocker)
    with django_db_blocker.unblock():
        transaction.set_rollback(True)
        outer.__exit__(None, None, None)


@pytest.fixture(scope="module")
def module_db(request, django_db_setup, django_db_blocker):
    """Rows a module's tests share, rolled back after its last: see _shared_transaction."""
    yield from _shared_transaction(
        request, django_db_blocker, lambda item: item.module is request.module
    )


@pytest.fixture(scope="class")
def class_db(request, django_db_setup, django_db_blocker):
    """Rows a test class shares, rolled back after its last test: see _shared_transaction.
    The module's other tests never see them."""
    if request.cls is None:
        raise pytest.UsageError("class_db is for the tests of a class")
    yield from _shared_transaction(
        request, django_db_blocker, lambda item: getattr(item, "cls", None) is request.cls
    )


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


@pytest.fixture
def daphne(django_db_setup, fake_provider_server):
    """Start daphne processes of this test's own (one may be killed, or run with settings
    of its own: `daphne(METRICS_ENABLED="true")`); stopped afterwards."""
    from django.db import connection

    from tests.live_server import DaphneServer

    servers = []

    def start(**env) -> DaphneServer:
        server = DaphneServer(
            settings_dict=connection.settings_dict,
            provider_url=fake_provider_server.base_url,
            redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14"),
            **env,
        ).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
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
    """Sign `user` in; returns a signed-in page, on the home page as after the login form.

    The session is the one a successful login makes (Django's `login()`, as the test
    client's force_login: user_logged_in fires, last_login is saved), handed to the page's
    browser context as the cookie the form's answer would set. The form itself cost every
    browser test a page and a deliberately slow password check in daphne:
    `through_form=True` goes through it, as test_browser.py's
    test_new_conversation_starts_from_the_model_picker does."""
    from django.conf import settings
    from django.test import Client

    def _login(user, page=None, *, through_form: bool = False):
        page = page or browser_context.new_page()
        if through_form:
            page.goto(f"{live_server_url}/accounts/login/")
            page.fill("input[name=username]", user.username)
            page.fill("input[name=password]", "correct horse battery")
            page.click("button[type=submit]")
            page.wait_for_url(f"{live_server_url}/")
            return page
        client = Client()
        client.force_login(user)
        cookie = client.cookies[settings.SESSION_COOKIE_NAME]
        page.context.add_cookies(
            [
                {
                    "name": cookie.key,
                    "value": cookie.value,
                    "url": live_server_url,
                    "httpOnly": bool(cookie["httponly"]),
                    "secure": bool(cookie["secure"]),
                    "sameSite": settings.SESSION_COOKIE_SAMESITE or "None",
                }
            ]
        )
        page.goto(f"{live_server_url}/")
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


@pytest.fixture
def in_background(settings, tmp_path):
    """Every import upload a job, run on this process's threads, its file under tmp_path."""
    settings.IMPORT_JOB_MIN_BYTES = 0
    settings.IMPORT_JOB_DIR = tmp_path / "imports"
    settings.CELERY_BROKER_URL = ""
    settings.RECALL_ENABLED = False
    return settings


@pytest.fixture
def told(monkeypatch):
    """The user events sent, as (user id, event): `send` is where they leave this process."""
    from conversations import user_events

    events: list[tuple[int, dict]] = []
    monkeypatch.setattr(user_events, "send", lambda user_id, event: events.append((user_id, event)))
    return events
