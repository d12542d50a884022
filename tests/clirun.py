"""Running the real ``earmark`` command from a test: one home for the tests that do."""

from __future__ import annotations

import os
import subprocess
import sys


def earmark(
    *args: str,
    timeout: float = 120,
    env: dict[str, str] | None = None,
    input: str | None = None,
) -> subprocess.CompletedProcess:
    """``python -m earmark ARGS`` in this interpreter, wide enough that no line wraps;
    ``env`` (default: this process's environment) with COLUMNS=200; ``input`` its stdin
    (default: none)."""
    return subprocess.run(
        [sys.executable, "-m", "earmark", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
        env=dict(os.environ if env is None else env, COLUMNS="200"),
    )
