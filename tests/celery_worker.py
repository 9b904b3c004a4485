"""A real Celery worker process on the Redis broker, for tests about tasks."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from tests.live_server import ROOT, database_url
from tests.waits import wait_until

# The line Celery logs when a task's run ends for good: it succeeded, or it raised (an
# exception it expected or not), or the worker failed it. A retry is not an end: the task
# runs again.
TASK_DONE = re.compile(
    r"Task (?P<task>\S+\[[^\]]+\]) (?:succeeded in|raised expected|raised unexpected|"
    r"INTERNAL ERROR)"
)


class CeleryWorker:
    def __init__(self, *, settings_dict: dict, broker_url: str, provider_url: str, **env) -> None:
        self.broker_url = broker_url
        self.log_path = ROOT / "test-artifacts" / "celery-worker.log"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "chatsite.settings",
            "DATABASE_URL": database_url(settings_dict),
            "CELERY_BROKER_URL": broker_url,
            "LOCAL_BASE_URL": provider_url,
            "LOCAL_API_KEY": "test-key",
            "PROVIDER_MAX_RETRIES": "0",
            **env,
        }
        self.process: subprocess.Popen | None = None
        self._log_offset = 0

    def start(self) -> "CeleryWorker":
        self.log_path.parent.mkdir(exist_ok=True)
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "chatsite", "worker", "--pool", "threads",
             "--concurrency", "2", "--loglevel", "INFO", "--without-gossip", "--without-mingle",
             "--without-heartbeat", "-n", f"test-{os.getpid()}-{time.monotonic_ns()}@%h"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self._wait_for_log("ready.")
        return self

    def log_text(self) -> str:
        with Path(self.log_path).open("rb") as log:
            log.seek(self._log_offset)
            return log.read().decode(errors="replace")

    def tasks_done(self, name_contains: str = "") -> list[str]:
        """The lines of the tasks that finished since this worker started (`name[id]`
        contains `name_contains`). Every worker writes to one log file: those started in
        the same test share these lines."""
        return [
            line
            for line in self.log_text().splitlines()
            if (done := TASK_DONE.search(line)) and name_contains in done["task"]
        ]

    def wait_for_tasks_done(
        self, count: int, *, name_contains: str = "", timeout: float = 30
    ) -> list[str]:
        """Wait until `count` tasks whose `name[id]` contains `name_contains` (a task name,
        or the id of one task) have finished; returns their log lines."""
        if count <= 0:
            return self.tasks_done(name_contains)

        def finished() -> list[str] | None:
            if self.process.poll() is not None:
                raise AssertionError(f"celery worker exited:\n{self.log_text()[-3000:]}")
            done = self.tasks_done(name_contains)
            return done if len(done) >= count else None

        try:
            return wait_until(finished, timeout=timeout)
        except AssertionError:
            if self.process.poll() is not None:
                raise
            done = len(self.tasks_done(name_contains))
            raise AssertionError(
                f"{done} of {count} tasks done in {timeout} s:\n{self.log_text()[-3000:]}"
            ) from None

    def _wait_for_log(self, marker: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if marker in self.log_text():
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"celery worker exited:\n{self.log_text()[-3000:]}")
            time.sleep(0.1)
        raise RuntimeError(f"celery worker not ready:\n{self.log_text()[-3000:]}")

    def kill(self) -> None:
        """Die mid-task, as an OOM kill or a lost machine would."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def stop(self, grace: float = 15) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds, as a service manager stops a unit."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.process.kill()


def flush_broker(broker_url: str) -> None:
    redis.Redis.from_url(broker_url).flushdb()
