"""A real Celery worker process on the Redis broker, for tests about tasks."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis

from tests.live_server import ROOT, _database_url


class CeleryWorker:
    def __init__(self, *, settings_dict: dict, broker_url: str, provider_url: str, **env) -> None:
        self.broker_url = broker_url
        self.log_path = ROOT / "test-artifacts" / "celery-worker.log"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "chatsite.settings",
            "DATABASE_URL": _database_url(settings_dict),
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

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()


def flush_broker(broker_url: str) -> None:
    redis.Redis.from_url(broker_url).flushdb()
