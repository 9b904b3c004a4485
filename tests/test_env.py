"""Settings read from the environment fail loudly and name the variable."""

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from chatsite.env import database_config, env_bool, env_float, env_int, env_list, env_url


def test_bad_boolean_names_the_variable(monkeypatch):
    monkeypatch.setenv("SIGNUP_ENABLED", "maybe")
    with pytest.raises(ImproperlyConfigured, match="SIGNUP_ENABLED"):
        env_bool("SIGNUP_ENABLED", True)


@pytest.mark.parametrize("raw,expected", [("true", True), ("0", False), ("Yes", True), ("", False)])
def test_booleans_accept_common_spellings(monkeypatch, raw, expected):
    monkeypatch.setenv("FLAG", raw)
    assert env_bool("FLAG", not expected) is expected


def test_bad_number_names_the_variable(monkeypatch):
    monkeypatch.setenv("PROVIDER_MAX_RETRIES", "two")
    with pytest.raises(ImproperlyConfigured, match="PROVIDER_MAX_RETRIES"):
        env_int("PROVIDER_MAX_RETRIES", 2)


def test_number_below_minimum_is_refused(monkeypatch):
    monkeypatch.setenv("PROVIDER_READ_TIMEOUT", "-1")
    with pytest.raises(ImproperlyConfigured, match="PROVIDER_READ_TIMEOUT must be at least"):
        env_float("PROVIDER_READ_TIMEOUT", 60.0, minimum=0.1)


def test_list_splits_on_commas_and_trims(monkeypatch):
    monkeypatch.setenv("ALLOWED_HOSTS", " a.example , b.example,, ")
    assert env_list("ALLOWED_HOSTS", []) == ["a.example", "b.example"]


def test_url_with_wrong_scheme_names_the_variable(monkeypatch):
    monkeypatch.setenv("REDIS_URL", "http://127.0.0.1:6379")
    with pytest.raises(ImproperlyConfigured, match="REDIS_URL"):
        env_url("REDIS_URL", schemes={"redis"})


def test_unset_database_url_means_the_embedded_postgres(monkeypatch):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    config = database_config("DATABASE_URL", lambda: "postgresql://postgres:@/postgres?host=/x/pg")
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["HOST"], config["NAME"]) == ("/x/pg", "postgres")
    assert "host" not in config.get("OPTIONS", {}), "the socket folder is the HOST"


def test_a_set_database_url_never_starts_the_embedded_server(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://app@db.example:5433/chat")

    def embedded() -> str:
        raise AssertionError("the embedded server was started")

    config = database_config("DATABASE_URL", embedded)
    assert (config["HOST"], config["PORT"], config["NAME"]) == ("db.example", 5433, "chat")


@pytest.mark.parametrize("url", ["nosuchdb://host/db", "sqlite:////tmp/x.sqlite3"])
def test_a_database_other_than_postgres_names_the_variable(monkeypatch, url):
    monkeypatch.setenv("DATABASE_URL", url)
    with pytest.raises(ImproperlyConfigured, match="DATABASE_URL"):
        database_config("DATABASE_URL", lambda: "unused")


def _start_settings(code: str = "", *, apps: bool = True, **env) -> subprocess.CompletedProcess:
    """Settings loaded in a fresh interpreter with `env`, then `code` run there. `apps`:
    Django set up too (seconds of imports), as a process starts; without, the settings
    module alone is read, which is all a question about a setting needs."""
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "chatsite.settings", **env}
    start = "import django; django.setup(); " if apps else ""
    return subprocess.run(
        [sys.executable, "-c", f"{start}{code}"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_start_up_stops_on_a_bad_value_naming_it():
    result = _start_settings(REDIS_URL="not a url")
    assert result.returncode != 0
    assert "REDIS_URL" in result.stderr


def test_secret_key_is_required_when_debug_is_off():
    result = _start_settings(DEBUG="false", SECRET_KEY="")
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG is off" in result.stderr


def _prepare_threshold(**env) -> str:
    code = (
        "from django.conf import settings; "
        "print(settings.DATABASES['default']['OPTIONS'].get('prepare_threshold'))"
    )
    postgres = "postgres://postgres@127.0.0.1:5432/postgres"
    result = _start_settings(code, apps=False, **{"DATABASE_URL": postgres, **env})
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_postgres_statements_are_prepared_unless_a_pooler_forbids_it():
    assert _prepare_threshold() == "5"
    assert _prepare_threshold(DATABASE_PREPARED_STATEMENTS="false") == "None"


@pytest.mark.django_db
def test_a_query_run_again_and_again_is_prepared_but_planned_for_each_run():
    from django.db import connection

    from conversations.models import Conversation

    for _ in range(6):
        list(Conversation.objects.filter(title="prepared?"))
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any('"title" = $1' in statement for statement in prepared), prepared
    with connection.cursor() as cursor:
        cursor.execute("SHOW plan_cache_mode")
        assert cursor.fetchone()[0] == "force_custom_plan", "each run planned for its values"
