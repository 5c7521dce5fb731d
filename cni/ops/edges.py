"""The operator command's two ways of looking at a node: run a read-only tool, read a file.

Every reader of `pycni status`/`gc` goes through these, so the rules the plugins keep for their own
tools and files (bounded waits, bounded reads) hold for the operator's reads in one place.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from cni.childenv import child_env

TOOL_TIMEOUT = 30.0
_READ_LIMIT = 1 << 20


def _read_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read(_READ_LIMIT)


def _tool(argv: list[str]) -> tuple[str | None, str]:
    """(stdout, "") or (None, why); (None, "") when the tool is not installed."""
    path = shutil.which(argv[0], path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    if path is None:
        return None, ""
    try:
        proc = subprocess.run([path, *argv[1:]], capture_output=True, text=True, timeout=TOOL_TIMEOUT,
                              env=child_env(), check=False)
    except subprocess.TimeoutExpired:
        return None, f"{argv[0]} gave no answer within {TOOL_TIMEOUT:g}s"
    if proc.returncode != 0:
        return None, f"{' '.join(argv)}: exited {proc.returncode}: {proc.stderr.strip()[:300]}"
    return proc.stdout, ""
