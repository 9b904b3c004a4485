"""What this CPU can run. The native code chatsite bundles is built for x86-64-v3 (AVX2 and
FMA): the embedded PostgreSQL's pgvector and the bundled embedder's engine. On a CPU
without those instructions either dies with SIGILL the first time it computes (a Postgres
backend, and with it every connection; or the whole web process), so recall asks here
first and keeps to words where they are missing.
"""

import functools
import platform
from collections.abc import Iterable
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


@functools.cache
def flags() -> frozenset[str] | None:
    """This CPU's feature flags; None where they are not read (anything but x86-64 Linux,
    where the wheels are built for the platform's baseline)."""
    if platform.machine() not in ("x86_64", "AMD64") or not CPUINFO.exists():
        return None
    return flags_from(CPUINFO.read_text(errors="replace"))


def flags_from(cpuinfo: str) -> frozenset[str] | None:
    """The first `flags` line of a /proc/cpuinfo text."""
    for line in cpuinfo.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == "flags":
            return frozenset(value.split())
    return None


def missing(required: Iterable[str]) -> tuple[str, ...]:
    """Of `required`, the flags this CPU lacks (none when its flags are not known)."""
    have = flags()
    if have is None:
        return ()
    return tuple(flag for flag in required if flag not in have)
