"""Provider health: each model's error rate and first-token times over the last hour, day and
week; an incident (one banner, one e-mail) when a model crosses a threshold, closed when it
recovers."""

import re
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import AsyncClient
from django.utils import timezone

from conversations import background_jobs, selectors, services
from conversations.models import (
    ChatModel,
    IncidentKind,
    Message,
    MessageStatus,
    ProviderIncident,
    Role,
    UsageKind,
    UsageRecord,
)
from tests.factories import (
    ChatModelFactory,
    ConversationFactory,
    MessageFactory,
    ProviderIncidentFactory,
    UsageRecordFactory,
    UserFactory,
)
from tests.fake_provider import Reply
from tests.wsclient import ChatSocket

HEALTH_URL = "/admin/conversations/providerincident/"
BANNER = "provider-health-banner"


def _caller():
    """The one account every call and reply here belongs to (no password to hash each time)."""
    return get_user_model().objects.get_or_create(username="caller")[0]


def _call(model: ChatModel, *, failed: bool = False, minutes_ago: int = 0, **fields):
    """One upstream call of `model` in the ledger; `failed`: an attempt sent again."""
    record = UsageRecordFactory(
        user=_caller(),
        provider_slug=model.provider.slug,
        model_name=model.name,
        retried=failed,
        **fields,
    )
    if minutes_ago:
        when = timezone.now() - timedelta(minutes=minutes_ago)
        UsageRecord.objects.filter(pk=record.pk).update(created_at=when)
    return record


def _calls(model: ChatModel, count: int, **options) -> None:
    for _ in range(count):
        _call(model, **options)


def _reply(model: ChatModel, *, ttft_ms=None, duration_ms=None, minutes_ago=0, **fields):
    return MessageFactory(
        conversation=ConversationFactory(chat_model=model, owner=_caller()),
        role=Role.ASSISTANT,
        chat_model=model,
        model_name=model.name,
        time_to_first_token_ms=ttft_ms,
        duration_ms=duration_ms,
        completed_at=timezone.now() - timedelta(minutes=minutes_ago),
        **fields,
    )


def _an_hour_passes() -> None:
    """Everything in the ledger and every reply so far falls out of the alert window."""
    earlier = timezone.now() - timedelta(minutes=90)
    UsageRecord.objects.update(created_at=earlier)
    Message.objects.filter(role=Role.ASSISTANT).update(completed_at=earlier)


def _health_of(model: ChatModel) -> selectors.ModelHealth:
    return next(h for h in selectors.provider_health_report() if h.chat_model == model)


def _window(model: ChatModel, key: str):
    return next(w for w in _health_of(model).windows if w.key == key)


@pytest.fixture
def qwen(db):
    return ChatModelFactory(provider__slug="qwen", provider__name="Qwen", name="qwen-plus")


@pytest.fixture
def staff(db):
    return UserFactory(username="ops", is_staff=True, email="ops@example.com")


def _sent_emails() -> list:
    assert background_jobs.wait_for_in_process_jobs(timeout=10)
    return list(mail.outbox)


# --- The figures ------------------------------------------------------------------------


def test_calls_and_failures_are_counted_per_window_and_older_calls_left_out(chat_model, qwen):
    failed_reply = _reply(chat_model, status=MessageStatus.FAILED, error_code="provider_error")
    _calls(chat_model, 3)
    _call(chat_model, failed=True)  # an attempt sent again
    _call(chat_model, message=failed_reply)  # the last attempt of a reply that failed
    _calls(chat_model, 2, failed=True, minutes_ago=180)
    _call(chat_model, minutes_ago=3 * 24 * 60)
    _calls(chat_model, 5, failed=True, minutes_ago=8 * 24 * 60)  # older than a week
    _call(chat_model, in_flight=True)  # no outcome yet
    _call(chat_model, kind=UsageKind.EMBEDDING)  # not a chat model's call
    _calls(qwen, 4, failed=True)

    figures = {w.key: w.figures for w in _health_of(chat_model).windows}

    assert [(f.calls, f.failed) for f in figures.values()] == [(5, 2), (7, 4), (8, 4)]
    assert figures["1h"].error_rate == pytest.approx(0.4)
    assert _window(qwen, "1h").figures.error_rate == 1.0


def test_first_token_percentiles_and_mean_duration_come_from_the_timed_replies(chat_model):
    for n in range(1, 11):
        _reply(chat_model, ttft_ms=n * 100, duration_ms=n * 1000)
    _reply(chat_model, status=MessageStatus.FAILED, duration_ms=50)  # no first token
    _reply(chat_model, ttft_ms=20_000, duration_ms=30_000, minutes_ago=2 * 24 * 60)
    _reply(chat_model, ttft_ms=20_000, duration_ms=30_000, minutes_ago=2 * 24 * 60)

    hour = _window(chat_model, "1h").figures
    week = _window(chat_model, "7d").figures

    # Postgres' percentile_cont interpolates: p95 of 100..1000 is 900 + 0.55 * 100.
    assert (hour.timed, hour.ttft_p50_ms, hour.ttft_p95_ms) == (10, 550, pytest.approx(955))
    assert hour.mean_duration_ms == 5500
    assert (week.timed, week.ttft_p50_ms, week.ttft_p95_ms) == (12, 650, 20_000)
    assert week.mean_duration_ms == pytest.approx((55_000 + 60_000) / 12)


def test_figures_over_a_threshold_are_marked_with_enough_calls_only(chat_model, qwen, settings):
    settings.PROVIDER_HEALTH_MIN_CALLS = 5
    _calls(chat_model, 6, failed=True)
    for _ in range(5):
        _reply(chat_model, ttft_ms=12_000)
    _calls(qwen, 4, failed=True)  # 100% failed, but four calls only

    hour = _window(chat_model, "1h")

    assert hour.error_rate_over and hour.ttft_over
    assert not _window(qwen, "1h").error_rate_over


def test_a_model_of_its_own_thresholds_is_judged_by_them(chat_model, qwen):
    qwen.health_error_rate = 0.5
    qwen.save()
    for model in (chat_model, qwen):
        _calls(model, 6)
        _calls(model, 4, failed=True)  # 40%

    assert _window(chat_model, "1h").error_rate_over
    assert not _window(qwen, "1h").error_rate_over
    assert _health_of(qwen).thresholds.error_rate == 0.5


def test_the_report_reads_every_model_and_window_in_four_queries(
    chat_model, qwen, django_assert_num_queries
):
    models = [chat_model, qwen, ChatModelFactory(name="fake-reasoner")]
    for model in models:
        _calls(model, 3)
        _reply(model, ttft_ms=300, duration_ms=900)
        ProviderIncidentFactory(chat_model=model)
    with django_assert_num_queries(4):  # models, ledger, replies, open incidents
        report = selectors.provider_health_report()
    assert {h.chat_model for h in report if h.open_incidents} == set(models)


def test_an_inactive_model_is_shown_only_while_it_has_calls(chat_model):
    quiet = ChatModelFactory(name="retired-quiet", is_active=False)
    used = ChatModelFactory(name="retired-used", is_active=False)
    _call(used, minutes_ago=24 * 60)
    shown = [h.chat_model for h in selectors.provider_health_report()]
    assert chat_model in shown and used in shown and quiet not in shown


# --- The health page --------------------------------------------------------------------


def _row(page: str, model: str, window: str) -> str:
    return re.search(
        rf'<tr class="health-row" data-model="{model}" data-window="{window}">.*?</tr>', page, re.S
    ).group(0)


def test_the_health_page_marks_a_failing_model_and_lists_its_incident(
    admin_client, chat_model, qwen
):
    _calls(chat_model, 6, failed=True)
    _calls(qwen, 6)

    response = admin_client.get(HEALTH_URL)

    page = response.content.decode()
    assert "health-over" in _row(page, "fake-model", "1h")
    assert "100.0% (over)" in _row(page, "fake-model", "1h")
    assert "health-over" not in _row(page, "qwen-plus", "1h")
    (incident,) = response.context["cl"].result_list
    assert (incident.chat_model, incident.kind, incident.is_open) == (
        chat_model,
        IncidentKind.ERROR_RATE,
        True,
    )
    assert "Local server" in page and "Qwen" in page


def test_every_staff_account_may_read_the_health_page_and_others_may_not(client, staff, user):
    client.force_login(staff)
    assert client.get(HEALTH_URL).status_code == 200
    assert "Provider health" in client.get("/admin/").content.decode()
    client.force_login(user)
    assert client.get(HEALTH_URL).status_code == 302


def test_the_catalogue_lists_link_to_the_health_page(admin_client, chat_model):
    for url in ["/admin/conversations/provider/", "/admin/conversations/chatmodel/"]:
        assert f'href="{HEALTH_URL}"' in admin_client.get(url).content.decode()


# --- Incidents and their e-mail ---------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_failing_model_opens_one_incident_with_one_email_however_often_it_is_checked(
    chat_model, staff
):
    _calls(chat_model, 6, failed=True)

    opened = services.provider_health_check(chat_model=chat_model, force=True)
    _calls(chat_model, 10, failed=True)
    for _ in range(3):
        services.provider_health_check(chat_model=chat_model, force=True)
    services.provider_health_check_all()

    assert [i.kind for i in opened] == [IncidentKind.ERROR_RATE]
    assert ProviderIncident.objects.count() == 1
    (email,) = _sent_emails()
    assert email.to == ["ops@example.com"]
    assert "Local server / fake-model" in email.subject and "100%" in email.subject
    assert "20%" in email.body and HEALTH_URL in email.body
    assert ProviderIncident.objects.get().emailed_at is not None


@pytest.mark.django_db(transaction=True)
def test_recovery_closes_the_incident_and_a_new_crossing_is_a_new_one_with_its_own_email(
    chat_model, staff
):
    _calls(chat_model, 6, failed=True)
    services.provider_health_check(chat_model=chat_model, force=True)

    _an_hour_passes()
    _calls(chat_model, 5)
    services.provider_health_check(chat_model=chat_model, force=True)
    first = ProviderIncident.objects.get()
    assert first.closed_at is not None

    _calls(chat_model, 6, failed=True)
    services.provider_health_check(chat_model=chat_model, force=True)

    assert ProviderIncident.objects.count() == 2
    assert ProviderIncident.objects.filter(closed_at__isnull=True).exclude(pk=first.pk).exists()
    assert len(_sent_emails()) == 2


def test_too_few_calls_to_judge_open_nothing_and_close_nothing(chat_model, settings):
    settings.PROVIDER_HEALTH_MIN_CALLS = 5
    _calls(chat_model, 4, failed=True)
    assert services.provider_health_check(chat_model=chat_model, force=True) == []

    incident = ProviderIncidentFactory(chat_model=chat_model)
    _an_hour_passes()
    _calls(chat_model, 2)  # fine so far, but two calls say little
    services.provider_health_check(chat_model=chat_model, force=True)
    incident.refresh_from_db()
    assert incident.is_open

    _an_hour_passes()  # and then nothing at all: nothing left to judge by
    services.provider_health_check(chat_model=chat_model, force=True)
    incident.refresh_from_db()
    assert not incident.is_open


def test_slow_first_tokens_open_a_ttft_incident(chat_model, settings):
    settings.PROVIDER_HEALTH_TTFT_P95_SECONDS = 10.0
    _calls(chat_model, 5)
    for _ in range(5):
        _reply(chat_model, ttft_ms=14_000, duration_ms=20_000)

    (incident,) = services.provider_health_check(chat_model=chat_model, force=True)

    assert (incident.kind, incident.value, incident.threshold) == (IncidentKind.TTFT_P95, 14, 10)
    assert incident.display(incident.value) == "14.0 s"


def test_the_check_after_a_reply_runs_at_most_once_per_interval_unless_forced(
    chat_model, django_assert_num_queries
):
    services.provider_health_check(chat_model=chat_model, force=True)
    with django_assert_num_queries(0):
        assert services.provider_health_check(chat_model=chat_model) == []
    with django_assert_num_queries(3):  # ledger, replies, open incidents
        services.provider_health_check(chat_model=chat_model, force=True)


def test_a_check_that_fails_logs_and_never_raises_into_the_reply(db, caplog):
    broken = ChatModel(name="no-provider")  # its provider cannot be read
    assert services.provider_health_check(chat_model=broken, force=True) == []
    assert services.provider_health_check(chat_model=None) == []
    assert "provider health check" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_the_email_goes_to_active_staff_with_an_address_and_to_alert_emails(
    chat_model, staff, settings
):
    settings.ALERT_EMAILS = ["oncall@example.com", "ops@example.com"]
    UserFactory(username="nomail", is_staff=True, email="")
    UserFactory(username="gone", is_staff=True, is_active=False, email="gone@example.com")
    UserFactory(username="member", email="member@example.com")
    incident = ProviderIncidentFactory(chat_model=chat_model, emailed_at=None)

    assert services.provider_incident_email(incident_id=incident.pk)
    assert not services.provider_incident_email(incident_id=incident.pk), "sent once"

    (email,) = mail.outbox
    assert email.to == ["oncall@example.com", "ops@example.com"]


# --- The banner -------------------------------------------------------------------------


def test_staff_see_the_banner_on_app_and_admin_pages_and_members_never(
    client, staff, user, chat_model
):
    ProviderIncidentFactory(chat_model=chat_model)
    client.force_login(staff)
    home = client.get("/").content.decode()
    assert home.count(BANNER) == 1
    assert "Local server / fake-model" in home and f'href="{HEALTH_URL}"' in home
    assert BANNER in client.get("/admin/").content.decode()

    client.force_login(user)
    assert BANNER not in client.get("/").content.decode()


def test_no_banner_while_every_model_is_healthy(client, staff, chat_model):
    ProviderIncidentFactory(chat_model=chat_model, closed_at=timezone.now())
    client.force_login(staff)
    assert BANNER not in client.get("/").content.decode()


def test_the_banner_is_one_small_query_then_cached(chat_model, django_assert_num_queries):
    ProviderIncidentFactory(chat_model=chat_model)
    with django_assert_num_queries(1):
        (unhealthy,) = selectors.provider_health_banner()
    with django_assert_num_queries(0):
        selectors.provider_health_banner()
    assert (unhealthy.provider, unhealthy.model, unhealthy.error_rate) == (
        "Local server",
        "fake-model",
        True,
    )


def test_a_closed_incident_takes_the_banner_down_at_once(
    client, staff, chat_model, django_capture_on_commit_callbacks
):
    ProviderIncidentFactory(chat_model=chat_model)
    client.force_login(staff)
    assert BANNER in client.get("/").content.decode()  # and cached

    _calls(chat_model, 10)
    with django_capture_on_commit_callbacks(execute=True):
        services.provider_health_check(chat_model=chat_model, force=True)

    assert BANNER not in client.get("/").content.decode()


# --- End to end: real replies through the fake provider, failing --------------------------


async def _ask_and_fail(tab: ChatSocket, text: str, key: str) -> None:
    await tab.say(text, key)
    await tab.read_until(
        lambda page: (
            page.last("user") is not None
            and page.last("user").text == text
            and page.last().status == MessageStatus.FAILED
        ),
        timeout=15,
    )


@pytest.mark.django_db(transaction=True)
async def test_a_provider_made_to_fail_crosses_its_threshold_with_one_banner_and_one_email(
    conversation, fake_provider, admin_user, settings
):
    settings.PROVIDER_HEALTH_MIN_CALLS = 5
    fake_provider.default_reply = Reply(status=500, headers={"Retry-After": "0"})
    admin, member = AsyncClient(), AsyncClient()
    await admin.aforce_login(admin_user)
    await member.aforce_login(conversation.owner)
    tab = ChatSocket(conversation, conversation.owner)
    await tab.connect()
    # Each reply is three failed calls (the first and PROVIDER_MAX_RETRIES=2 retries).
    await _ask_and_fail(tab, "Question 1", "k1")
    await _ask_and_fail(tab, "Question 2", "k2")

    page = (await admin.get(HEALTH_URL)).content.decode()
    assert "100.0% (over)" in _row(page, "fake-model", "1h")

    # More failures, more checks: still the one incident, the one e-mail.
    await _ask_and_fail(tab, "Question 3", "k3")
    await tab.close()
    await admin.get(HEALTH_URL)
    home = (await admin.get("/")).content.decode()
    assert home.count(BANNER) == 1 and "fake-model" in home
    assert BANNER not in (await member.get("/")).content.decode()
    # (Last through database_sync_to_async: it closes the connection the pages used.)
    await database_sync_to_async(services.provider_health_check)(
        chat_model=conversation.chat_model, force=True
    )
    incidents = await database_sync_to_async(list)(ProviderIncident.objects.all())
    assert [(i.kind, i.is_open, i.samples) for i in incidents] == [
        (IncidentKind.ERROR_RATE, True, 6)
    ]
    assert len(fake_provider.chat_requests) == 9
    (email,) = await sync_to_async(_sent_emails)()
    assert email.to == ["admin@example.com"]
