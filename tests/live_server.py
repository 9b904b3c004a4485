"""chatsite under a real daphne process, for browser tests.

The server uses the test database (committed data: tests use transactional_db), the Redis
channel layer and the fake provider, exactly as a deployment would.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url(settings_dict: dict) -> str:
    """The test database's URL for a server or worker process of the suite's own."""
    user = settings_dict.get("USER") or "postgres"
    host = settings_dict.get("HOST") or "127.0.0.1"
    if host.startswith("/"):
        host = quote(host, safe="")  # a Unix socket folder (the embedded server)
    port = settings_dict.get("PORT") or 5432
    return f"postgres://{user}@{host}:{port}/{settings_dict['NAME']}"


class DaphneServer:
    def __init__(
        self,
        *,
        settings_dict: dict,
        provider_url: str,
        redis_url: str,
        daphne_args: tuple[str, ...] = (),
        **env,
    ) -> None:
        self.port = free_port()
        self.daphne_args = daphne_args  # e.g. --proxy-headers, as behind nginx
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = ROOT / "test-artifacts" / f"daphne-{self.port}.log"
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "chatsite.settings",
            "DATABASE_URL": database_url(settings_dict),
            "REDIS_URL": redis_url,
            "LOCAL_BASE_URL": provider_url,
            "LOCAL_API_KEY": "test-key",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DEBUG": "true",
            "STREAM_SAVE_INTERVAL": "0.2",
            "STREAM_STALE_AFTER": "3",
            "PROVIDER_READ_TIMEOUT": "2",
            "PROVIDER_MAX_RETRIES": "2",
            "TITLES_ENABLED": "false",
            "RECALL_ENABLED": "false",
            **env,
        }
        self.process: subprocess.Popen | None = None

    def start(self) -> "DaphneServer":
        self.log_path.parent.mkdir(exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "daphne", *self.daphne_args, "-b", "127.0.0.1",
             "-p", str(self.port), "chatsite.asgi:application"],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        self._wait_until_serving()
        return self

    def _wait_until_serving(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"daphne exited; see {self.log_path}")
            try:
                urllib.request.urlopen(f"{self.url}/accounts/login/", timeout=1)
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"daphne did not start; see {self.log_path}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def kill(self) -> None:
        """Die as a crash would: no chance to finish anything."""
        if self.process:
            self.process.kill()
            self.process.wait()

    def restart(self) -> None:
        self.kill()
        self.start()
