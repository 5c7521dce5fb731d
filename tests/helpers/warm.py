"""The two launch paths every suite that launches plugins runs on, and what the warm one needs.

``PATHS``: cold (``PYCNI_WARM_SOCKET=off``) and warm (a ``WarmServer``, bench/warmserve.py, whose
``env`` the calls carry). ``process_state`` and ``wait_for`` watch the processes of a call.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.warmserve import WARM_ENV, WarmServer

__all__ = ["PATHS", "WARM_ENV", "WarmServer", "process_state", "stat_fields", "wait_for"]

PATHS = ("cold", "warm")


def stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name: [0] the state, [16] nice, [19] start time, as
    proc(5) numbers them from 3; None when the process is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def process_state(pid: int) -> str | None:
    """The one-letter state of a process (R, S, T, Z...), None when it is gone."""
    fields = stat_fields(pid)
    return fields[0] if fields else None


def wait_for(predicate, timeout: float = 30.0, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())
