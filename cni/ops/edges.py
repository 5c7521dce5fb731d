"""The operator command's two ways of looking at a node: run a read-only tool, read a file.

Every reader of `pycni status`/`gc` goes through these, so the rules the plugins keep for their own
tools and files (bounded waits, bounded reads) hold for the operator's reads in one place.
"""

from __future__ import annotations

import subprocess

from cni.childenv import child_env

TOOL_TIMEOUT = 30.0
_READ_LIMIT = 1 << 20


def read_file(path: str) -> bytes:
    """A file a config or the cache names, as the plugins open one (never a FIFO or a device)."""
    from cni.safeopen import read_regular

    return read_regular(path, _READ_LIMIT)


def run_tool(argv: list[str]) -> tuple[str | None, str]:
    """(stdout, "") or (None, why); (None, "") when the tool is not installed."""
    from cni.net.firewall.tools import which  # absolute PATH directories only, as the plugins

    path = which(argv[0])
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
