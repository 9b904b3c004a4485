"""Programs from Debian packages that some tests run (nginx, docker-compose).

`.ci/run` installs them, so in CI (`CI` set) a missing one fails the test that needs it,
naming the package; on a laptop without it that test skips, saying what to install.
"""

import os
from pathlib import Path

import pytest


def system_tool(path: str, package: str) -> str:
    """`path` if the program is there; otherwise fail (in CI) or skip."""
    if Path(path).is_file() and os.access(path, os.X_OK):
        return path
    reason = f"{path} is missing: `apt-get install {package}` (.ci/run installs it)"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)
