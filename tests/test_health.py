"""Health checks: /healthz answers without touching anything, /readyz says what it checked
and which service is missing, with 503, so an orchestrator holds traffic back."""

import pytest


def test_healthz_answers_without_the_database_or_a_sign_in(client):
    # No django_db mark: a query would fail the test.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_readyz_checks_the_database_migrations_channel_layer_and_broker(client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:6379/14"
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:6379/12"
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ready"
    assert body["checks"]["database"]["ok"] and body["checks"]["migrations"]["ok"]
    assert body["checks"]["migrations"]["detail"] == "all applied"
    assert body["checks"]["channel_layer"]["detail"] == "answers"
    assert body["checks"]["broker"]["detail"] == "answers"


@pytest.mark.django_db
def test_readyz_without_redis_or_broker_configured_is_ready_in_one_process(client, settings):
    settings.REDIS_URL, settings.CELERY_BROKER_URL = "", ""
    body = client.get("/readyz").json()
    assert body["status"] == "ready"
    assert body["checks"]["channel_layer"]["detail"] == "in memory (one process)"
    assert body["checks"]["broker"]["detail"] == "none (jobs run in-process)"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("setting", "url", "failing"),
    [
        ("REDIS_URL", "redis://127.0.0.1:1/0", "channel_layer"),
        ("CELERY_BROKER_URL", "redis://127.0.0.1:1/0", "broker"),
        ("CELERY_BROKER_URL", "amqp://guest:guest@127.0.0.1:1//", "broker"),
    ],
)
def test_readyz_names_the_service_it_cannot_reach_and_answers_503(
    client, settings, setting, url, failing
):
    settings.REDIS_URL, settings.CELERY_BROKER_URL = "", ""
    setattr(settings, setting, url)
    response = client.get("/readyz")
    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "not ready"
    assert [name for name, c in body["checks"].items() if not c["ok"]] == [failing]
    assert "guest" not in body["checks"][failing]["detail"], "no credentials in the answer"
    assert body["checks"]["database"]["ok"]


def test_readyz_answers_503_when_the_database_is_unreachable(client, settings, django_db_blocker):
    """The database check runs first and fails alone: the other checks still answer."""
    settings.REDIS_URL, settings.CELERY_BROKER_URL = "", ""
    with django_db_blocker.unblock():
        from django.db import connection

        real = connection.settings_dict["PORT"], connection.settings_dict["HOST"]
        connection.close()
        connection.settings_dict["HOST"], connection.settings_dict["PORT"] = "127.0.0.1", "1"
        try:
            response = client.get("/readyz")
        finally:
            connection.close()
            connection.settings_dict["PORT"], connection.settings_dict["HOST"] = real
    body = response.json()
    assert response.status_code == 503
    assert not body["checks"]["database"]["ok"] and not body["checks"]["migrations"]["ok"]
    assert body["checks"]["broker"]["ok"]
