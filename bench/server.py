"""daphne as `make run` starts it, plus an optional log of every statement sent to Postgres.

With BENCH_QUERY_LOG=<path> each SQL statement (Django's queries and its connection health
checks alike) and each COMMIT/ROLLBACK is appended to the file with its time.monotonic(), so
the bench can count what one reply costs. Hooked at psycopg's cursor, below Django, so nothing
that reaches the server is missed. Logging runs only between SIGUSR1 and SIGUSR2, so that the
load phases measure the server without it.
"""

import os
import signal
import sys
import threading
import time


def _log_statements(path: str) -> None:
    import psycopg

    out = open(path, "a", buffering=1)  # noqa: SIM115 (lives as long as the process)
    lock = threading.Lock()
    logging = threading.Event()
    signal.signal(signal.SIGUSR1, lambda *_: logging.set())
    signal.signal(signal.SIGUSR2, lambda *_: logging.clear())

    def record(kind: str, query) -> None:
        text = query.decode() if isinstance(query, bytes) else str(query)
        # Whole statements: the sweeper's is recognised by its WHERE clause.
        line = f"{time.monotonic():.6f}\t{kind}\t{' '.join(text.split())}\n"
        with lock:
            out.write(line)

    def wrap(cls, name: str, kind: str) -> None:
        original = getattr(cls, name)

        def wrapper(self, *args, **kwargs):
            if logging.is_set():
                record(kind, args[0] if args else kind.upper())
            return original(self, *args, **kwargs)

        setattr(cls, name, wrapper)

    wrap(psycopg.Cursor, "execute", "sql")
    wrap(psycopg.Cursor, "executemany", "sql")
    wrap(psycopg.Connection, "commit", "commit")
    wrap(psycopg.Connection, "rollback", "rollback")


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatsite.settings")
    if path := os.environ.get("BENCH_QUERY_LOG"):
        _log_statements(path)
    from daphne.cli import CommandLineInterface

    CommandLineInterface().run(sys.argv[1:])


if __name__ == "__main__":
    main()
