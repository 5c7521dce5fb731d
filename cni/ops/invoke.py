"""Running an installed plugin executable for one verb, as a runtime does: env, stdin, bounded wait.

STATUS and GC carry only CNI_COMMAND and CNI_PATH (libcni exports the other variables empty).
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any, NamedTuple

from cni.childenv import child_env

TIMEOUT = 60.0


class Answer(NamedTuple):
    """A plugin's answer: ok, or the CNI error it printed (code, msg, details)."""

    ok: bool
    code: int | None
    msg: str
    details: str

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "code": self.code, "msg": self.msg or None, "details": self.details or None}


def find(bin_dir: str, plugin_type: str) -> str | None:
    """The executable of a plugin type in bin_dir, or None."""
    if not plugin_type or "/" in plugin_type or plugin_type in (".", ".."):
        return None
    path = os.path.join(bin_dir, plugin_type)
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


def run(executable: str, command: str, config: dict[str, Any], bin_dir: str, *,
        container_id: str = "", netns: str = "", ifname: str = "", cni_args: str = "",
        timeout: float = TIMEOUT) -> Answer:
    """Execute one verb; a crash, a timeout or unreadable output is an error answer, never raised."""
    env = child_env()
    env.update(CNI_COMMAND=command, CNI_PATH=bin_dir, CNI_CONTAINERID=container_id, CNI_NETNS=netns,
               CNI_IFNAME=ifname, CNI_ARGS=cni_args)
    try:
        proc = subprocess.run([executable], input=json.dumps(config).encode(), env=env,
                              capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return Answer(False, None, f"no answer within {timeout:g}s", "")
    except OSError as e:
        return Answer(False, None, f"cannot execute {executable}: {e.strerror}", "")
    if proc.returncode == 0:
        return Answer(True, None, "", "")
    out = proc.stdout.decode(errors="replace").strip()
    try:
        raw = json.loads(out)
        return Answer(False, int(raw["code"]), str(raw.get("msg", "")), str(raw.get("details") or ""))
    except (ValueError, KeyError, TypeError):
        err = proc.stderr.decode(errors="replace").strip()
        return Answer(False, None, f"exited {proc.returncode}", (out or err)[-500:])


def supported_versions(executable: str, bin_dir: str, timeout: float = TIMEOUT) -> list[str] | None:
    """The plugin's VERSION answer (`supportedVersions`), or None when it gives none."""
    env = child_env()
    env.update(CNI_COMMAND="VERSION", CNI_PATH=bin_dir)
    try:
        proc = subprocess.run([executable], input=b'{"cniVersion":"1.1.0"}', env=env, capture_output=True,
                              timeout=timeout, check=False)
        versions = json.loads(proc.stdout).get("supportedVersions")
    except (subprocess.TimeoutExpired, OSError, ValueError, AttributeError):
        return None
    return [v for v in versions if isinstance(v, str)] if isinstance(versions, list) else None
