"""Run one CNI plugin executable directly, with exactly the environment a runtime gives it.

For verbs libcni 1.1.2 cannot send (GC, STATUS), for VERSION, and for malformed input.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from .outcome import Outcome, parse_json

TIMEOUT = 60
DEFAULT_CONTAINER_ID = "pycni-test-container"
# Variables kept from the caller's environment; everything else is dropped so a run is reproducible.
_KEPT = ("PATH", "LANG", "LC_ALL", "TMPDIR", "PYTHONDONTWRITEBYTECODE")


def _dirs(cni_path: Any) -> list[str]:
    if cni_path is None:
        return []
    if isinstance(cni_path, (list, tuple)):
        return [str(p) for p in cni_path]
    return [p for p in str(cni_path).split(os.pathsep) if p]


def find_plugin(path_or_type: Any, cni_path: Any) -> Path:
    """A path (anything with a ``/``) as is; a bare type looked up in ``cni_path`` like libcni does."""
    text = str(path_or_type)
    if "/" in text:
        return Path(text)
    for d in _dirs(cni_path):
        candidate = Path(d) / text
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise FileNotFoundError(f"plugin {text!r} not found in CNI_PATH {_dirs(cni_path)}")


def _stdin_bytes(config: Any) -> bytes:
    if config is None:
        return b""
    if isinstance(config, bytes):
        return config
    if isinstance(config, str):
        return config.encode()
    return json.dumps(config).encode()


def run_plugin(path_or_type: Any, command: str | None, config: Any = None, *, netns: Any = "",
               ifname: str | None = "eth0", container_id: str | None = DEFAULT_CONTAINER_ID,
               cni_args: Any = "", cni_path: Any = None, extra_env: dict | None = None,
               stdin: Any = None, timeout: float = TIMEOUT) -> Outcome:
    """Exec a plugin with the six CNI variables (as libcni exports them, empty ones included).

    - ``path_or_type``: an executable path, or a plugin type looked up in ``cni_path``.
    - ``command``: CNI_COMMAND (``ADD``, ``DEL``, ``CHECK``, ``GC``, ``STATUS``, ``VERSION``, or
      anything else to test rejection). ``None`` leaves it unset.
    - ``config``: dict (sent as JSON), str or bytes on stdin. ``stdin`` overrides it verbatim.
    - ``netns``, ``ifname``, ``container_id``, ``cni_args``: CNI_NETNS, CNI_IFNAME,
      CNI_CONTAINERID, CNI_ARGS (dict or pairs become ``K=V;K=V``); ``None`` leaves one unset.
      ``netns`` may be an object with ``.path``.
    - ``cni_path``: CNI_PATH, default the plugin's own directory (so IPAM delegates are found).
    - ``extra_env``: more variables; a ``None`` value removes one.
    """
    plugin = find_plugin(path_or_type, cni_path)
    if cni_path is None:
        cni_path = str(plugin.parent)
    env = {k: os.environ[k] for k in _KEPT if k in os.environ}
    if isinstance(cni_args, dict):
        cni_args = ";".join(f"{k}={v}" for k, v in cni_args.items())
    elif isinstance(cni_args, (list, tuple)):
        cni_args = ";".join(f"{k}={v}" for k, v in cni_args)
    if netns is not None:
        netns = str(getattr(netns, "path", netns))
    values = {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": container_id,
        "CNI_NETNS": netns,
        "CNI_IFNAME": ifname,
        "CNI_ARGS": cni_args,
        "CNI_PATH": os.pathsep.join(_dirs(cni_path)),
    }
    env.update({k: v for k, v in values.items() if v is not None})
    for k, v in (extra_env or {}).items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    data = _stdin_bytes(stdin if stdin is not None else config)
    argv = (str(plugin),)
    try:
        proc = subprocess.run(argv, input=data, env=env, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"{plugin} {command} timed out after {timeout}s\n"
                             f"stdout={exc.stdout!r}\nstderr={exc.stderr!r}") from None
    out = proc.stdout.decode(errors="replace")
    err = proc.stderr.decode(errors="replace")
    return Outcome(proc.returncode, out, err, parse_json(out), argv, env)
