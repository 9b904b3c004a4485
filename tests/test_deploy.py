"""The project's own health: deploy checks and migrations."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def manage_command(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_passes_with_production_settings():
    result = manage_command(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="false",
        SECRET_KEY="x" * 20 + "a-real-looking-secret-0123456789-abcdefghijkl",
        ALLOWED_HOSTS="chat.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_models_and_migrations_agree():
    result = manage_command("makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_asgi_entry_point_freezes_startup_objects_and_shortens_gil_switches():
    # A fresh interpreter, as daphne loads it: what the app loaded at start is out of the
    # collector's way, the event loop gets the GIL back from ORM threads within 0.5 ms, and
    # autobahn's per-frame debug highlighting is deferred.
    probe = (
        "import gc, sys, chatsite.asgi; from autobahn.websocket import protocol;"
        " print(gc.get_freeze_count(), sys.getswitchinterval(),"
        " hasattr(protocol.hlval, '__wrapped__'))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "chatsite.settings"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    frozen, switch_interval, highlighting_deferred = result.stdout.split()
    assert highlighting_deferred == "True"
    assert int(frozen) > 50_000  # Django and the app, not a handful of objects
    assert float(switch_interval) == 0.0005


def test_the_compose_file_avoids_env_file_options_older_compose_rejects():
    """`env_file` entries with `path`/`required` need Compose 2.24; Debian's packaged
    docker-compose refuses the file for them."""
    import yaml

    compose = yaml.safe_load(
        (Path(__file__).resolve().parent.parent / "docker-compose.yml").read_text()
    )
    for name, service in compose["services"].items():
        entries = service.get("env_file") or []
        entries = [entries] if isinstance(entries, str) else entries
        assert all(isinstance(e, str) for e in entries), f"{name}: env_file needs Compose 2.24"


COMPOSE_FILE = ROOT / "docker-compose.yml"


def test_the_compose_file_follows_the_compose_specification():
    """The Compose Specification's JSON schema (tests/data/compose-spec.json; its source and
    commit are in tests/data/README.md) is what Docker Compose v2 checks a file against."""
    import json

    import jsonschema
    import yaml

    schema = json.loads((ROOT / "tests" / "data" / "compose-spec.json").read_text())
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    errors = [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in jsonschema.Draft7Validator(schema).iter_errors(compose)
    ]
    assert errors == []


def test_debians_docker_compose_1_29_accepts_the_compose_file(tmp_path):
    """The oldest Compose the README names: Debian 12's docker-compose 1.29. `config` checks
    the file without a Docker daemon (as `config -q` does, but `-q` also hides the warnings,
    such as an unset variable); an empty env file keeps a developer's .env out of it."""
    from tests.system_tools import system_tool

    docker_compose = system_tool("/usr/bin/docker-compose", "docker-compose")
    empty = tmp_path / "empty.env"
    empty.write_text("")
    result = subprocess.run(
        [docker_compose, "--env-file", str(empty), "-f", str(COMPOSE_FILE), "config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", f"no warning either: {result.stderr}"
