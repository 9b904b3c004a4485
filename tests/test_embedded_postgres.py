"""The embedded PostgreSQL: pgvector and pg_trgm inside, shared by the processes that attach
to one data folder, stopped by the last of them, never kept up by a process that died."""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

from chatsite import embedded_postgres

ROOT = Path(__file__).resolve().parent.parent


def _running(data_dir: Path) -> bool:
    return (data_dir / "postmaster.pid").exists()


def _attached_child(data_dir: Path) -> subprocess.Popen:
    """Another process attached to the server of `data_dir`, waiting for a signal."""
    code = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from chatsite import embedded_postgres
        embedded_postgres.database_url(Path({str(data_dir)!r}))
        print("attached", flush=True)
        time.sleep(600)
    """)
    child = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout.readline().strip() == "attached"
    return child


@pytest.fixture
def data_dir(tmp_path):
    folder = tmp_path / "pg"
    yield folder
    if _running(folder):  # a failed test must not leave a server behind
        embedded_postgres.attach(folder).cleanup()


def test_the_server_comes_with_pgvector_and_pg_trgm(data_dir):
    server = embedded_postgres.attach(data_dir)
    try:
        with psycopg.connect(server.get_uri()) as connection:
            connection.execute("CREATE EXTENSION vector")
            connection.execute("CREATE EXTENSION pg_trgm")
            major = connection.execute("SHOW server_version_num").fetchone()[0]
            # 384 dimensions, as recall stores: the wide loops are where a build for the
            # wrong CPU dies (0.1.6's AVX-512 pgvector, SIGILL). On a CPU the check says
            # lacks what pgvector needs, recall never calls it, and neither does this test.
            distance = (
                connection.execute(
                    "SELECT %s::vector <=> %s::vector",
                    ["[" + ",".join(["1"] * 384) + "]", "[" + ",".join(["-1"] * 384) + "]"],
                ).fetchone()
                if not embedded_postgres.missing_cpu_flags()
                else (2.0,)
            )
            similar = connection.execute(
                "SELECT similarity('kingfisher', 'kingfishers')"
            ).fetchone()
        assert int(major) >= 180000
        assert distance[0] == pytest.approx(2.0)
        assert similar[0] > 0.5
    finally:
        server.cleanup()
    assert not _running(data_dir), "the last process to detach stops the server"


def test_the_server_stays_up_while_another_process_is_attached(data_dir):
    server = embedded_postgres.attach(data_dir)
    uri = server.get_uri()
    child = _attached_child(data_dir)
    try:
        server.cleanup()
        assert _running(data_dir), "the other process still uses it"
        with psycopg.connect(uri) as connection:
            assert connection.execute("SELECT 1").fetchone() == (1,)
    finally:
        child.send_signal(signal.SIGTERM)
        child.wait(timeout=30)
    assert child.returncode == 128 + signal.SIGTERM, "SIGTERM became a normal exit"
    assert not _running(data_dir), "a terminated last process stops the server on its way out"


def test_a_process_killed_outright_does_not_keep_the_server_up(data_dir):
    child = _attached_child(data_dir)
    child.kill()
    child.wait(timeout=30)
    assert _running(data_dir), "a SIGKILL runs no clean-up"
    server = embedded_postgres.attach(data_dir)
    assert json.loads((data_dir / embedded_postgres.HANDLES_FILE).read_text()) == [os.getpid()]
    server.cleanup()
    assert not _running(data_dir), "the dead process was pruned, so this one was the last"


def test_a_folder_of_other_files_is_refused_with_a_clear_error(tmp_path):
    folder = tmp_path / "not-postgres"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    from django.core.exceptions import ImproperlyConfigured

    with pytest.raises(ImproperlyConfigured, match="holds files but no PostgreSQL data"):
        embedded_postgres.attach(folder)
    assert (folder / "notes.txt").read_text() == "mine"


@pytest.mark.skipif(not settings.DATABASE_IS_EMBEDDED, reason="TEST_DATABASE_URL names a server")
def test_the_suite_runs_on_the_embedded_server_by_default(db):
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name FROM pg_available_extensions WHERE name = ANY(%s)", [["vector", "pg_trgm"]]
        )
        assert {row[0] for row in cursor.fetchall()} == {"vector", "pg_trgm"}
    assert connection.settings_dict["HOST"].startswith("/"), "a Unix socket, no TCP port"
    assert _running(Path(settings.EMBEDDED_POSTGRES_DIR))
