"""What `pycni status` says of the warm process: running or not, its pid, whether it serves this
bundle (the build ids compared), its memory. Asked over its own socket (a ping), read from /proc."""

from __future__ import annotations

import os
import socket
import struct
import sys
from typing import Any

from . import protocol

PING_TIMEOUT = 3.0  # socket activation may start the process first


def socket_path() -> str:
    """The socket a plugin call of this environment would try (the launcher's rule)."""
    return os.environ.get("PYCNI_WARM_SOCKET") or protocol.DEFAULT_SOCKET


def probe(path: str | None = None) -> dict[str, Any]:
    path = path or socket_path()
    report: dict[str, Any] = {"socket": path, "running": False, "pid": None, "buildId": None,
                              "bundleMatches": None, "rssKiB": None, "pssKiB": None, "error": None}
    if path == "off":
        report["error"] = "PYCNI_WARM_SOCKET=off"
        return report
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(PING_TIMEOUT)
            s.connect(path)
            pid, uid, _ = struct.unpack("3i", s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
            s.sendall(protocol.ping())
            answer = b""
            while not answer.endswith(b"\n"):
                chunk = s.recv(256)
                if not chunk:
                    break
                answer += chunk
    except OSError as exc:
        report["error"] = f"not running ({exc.strerror or exc})"
        return report
    if not answer.startswith(protocol.PING) or uid != 0:
        report["error"] = ("the socket's server did not answer as a root pycni warm process (or it serves "
                           "other mount or network namespaces than this command's)")
        return report
    ours = getattr(sys, "_pycni_build_id", None)
    report.update(running=True, pid=pid, buildId=answer[1:].strip().decode(errors="replace"))
    report["bundleMatches"] = ours is not None and report["buildId"] == ours
    report["rssKiB"], report["pssKiB"] = _memory(pid)
    return report


def _memory(pid: int) -> tuple[int | None, int | None]:
    """Resident and proportional set size (kB) of the warm process itself (not of its children)."""
    values: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("Rss", "Pss"):
                    values[key] = int(rest.split()[0])
    except (OSError, ValueError):
        pass
    return values.get("Rss"), values.get("Pss")
