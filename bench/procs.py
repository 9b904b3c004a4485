"""The processes a bench run starts: provider, raw relays, daphne servers, and their readings."""

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    def __init__(
        self, name: str, args: list[str], env: dict, logs: Path, port: int, *, nice: int = 0
    ) -> None:
        self.name, self.port = name, port
        self.log = open(logs / f"{name}.log", "w")  # noqa: SIM115 (closed in stop())
        self.popen = subprocess.Popen(
            [sys.executable, *args],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            preexec_fn=(lambda: os.nice(nice)) if nice else None,
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def wait_listening(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see {self.log.name}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError(f"{self.name} did not listen on {self.port}")

    @property
    def url(self) -> str:
        """The fake provider's API root, for a provider process."""
        return f"http://127.0.0.1:{self.port}/v1"

    def wait_for_log(self, text: str, timeout: float = 60) -> None:
        """Until the process has logged `text` (a worker that listens on no port)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen.poll() is not None:
                raise RuntimeError(f"{self.name} exited; see {self.log.name}")
            if text in Path(self.log.name).read_text(errors="replace"):
                return
            time.sleep(0.2)
        raise TimeoutError(f"{self.name} did not log {text!r}")

    def rss_kb(self) -> int:
        return _status_kb(self.pid, "VmRSS")

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self.log.close()


def daphne(name: str, env: dict, logs: Path) -> Proc:
    """A daphne server of the app on a free port, as `make run` starts it (bench/server.py)."""
    port = free_port()
    args = ["-m", "bench.server", "-b", "127.0.0.1", "-p", str(port), "chatsite.asgi:application"]
    return Proc(name, args, env, logs, port)


def raise_own_priority(by: int) -> int:
    """Lower this process's nice value by `by` if allowed (root, CAP_SYS_NICE); the nice
    value it runs at."""
    current = os.getpriority(os.PRIO_PROCESS, 0)
    with contextlib.suppress(PermissionError):
        os.setpriority(os.PRIO_PROCESS, 0, current - by)
    return os.getpriority(os.PRIO_PROCESS, 0)


def _status_kb(pid: int | str, field: str) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid: int | str = "self", *, reaped_children: bool = False) -> float:
    """User + system CPU time of a process so far; with reaped_children, also that of its
    children that have exited (a Postgres backend's CPU moves to the postmaster's)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


class CpuMeter:
    """CPU used by each process (and Postgres/Redis, by name) between start() and stop()."""

    def __init__(self, procs: list[Proc]) -> None:
        self.procs = procs

    def _read(self) -> dict[str, float]:
        readings = {p.name: p.cpu_seconds() for p in self.procs}
        readings["driver (clients)"] = cpu_seconds()
        readings["postgres"] = _by_command("postgres")
        readings["redis"] = _by_command("redis-server")
        return readings

    def start(self) -> None:
        self.started, self.before = time.monotonic(), self._read()

    def stop(self) -> dict[str, float]:
        """Cores used on average over the interval, per process."""
        elapsed, after = time.monotonic() - self.started, self._read()
        return {k: round((after[k] - self.before[k]) / elapsed, 2) for k in after}


def _by_command(name: str) -> float:
    total = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm") as comm:
                if comm.read().strip() != name:
                    continue
            # Counting what exited children used keeps the sum from falling when a
            # connection's backend exits between two readings.
            total += cpu_seconds(pid, reaped_children=True)
        except (OSError, IndexError):
            continue
    return total
