"""A tiny CNI runtime: runs a configuration list through the plugin executables as libcni does.

Each plugin of the list gets the list's name and cniVersion injected, the CNI_* environment a
runtime sets, and (from the second plugin on, and for CHECK and DEL) the previous result as
`prevResult`; DEL runs the list in reverse order.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field


class PluginError(Exception):
    def __init__(self, plugin: str, verb: str, rc: int, answer: dict | None, stderr: str) -> None:
        msg = (answer or {}).get("msg") or stderr.strip() or f"exit status {rc}"
        details = (answer or {}).get("details")
        super().__init__(f"{plugin} {verb} failed (code {(answer or {}).get('code', '?')}): {msg}"
                         + (f" ({details})" if details else ""))


@dataclass
class Attachment:
    """One pod's attachment to the network: what DEL and CHECK need later."""

    container_id: str
    netns: str
    ifname: str
    cni_args: str
    capability_args: dict = field(default_factory=dict)  # e.g. {"bandwidth": {...}}, as CAP_ARGS
    result: dict | None = None
    done: list[str] = field(default_factory=list)  # plugin types whose ADD ran


class Runtime:
    def __init__(self, conflist: dict, cni_path: list[str]) -> None:
        self.conflist = conflist
        self.cni_path = cni_path

    def _find(self, plugin_type: str) -> str:
        for d in self.cni_path:
            candidate = os.path.join(d, plugin_type)
            if os.access(candidate, os.X_OK):
                return candidate
        raise FileNotFoundError(f'plugin "{plugin_type}" not found in CNI_PATH {":".join(self.cni_path)}')

    def _exec(self, plugin: dict, verb: str, att: Attachment, prev: dict | None) -> dict | None:
        conf = {**plugin, "name": self.conflist["name"], "cniVersion": self.conflist["cniVersion"]}
        if prev is not None:
            conf["prevResult"] = prev
        caps = {k: v for k, v in att.capability_args.items() if plugin.get("capabilities", {}).get(k)}
        if caps:  # libcni hands a capability only to the plugins that declare it
            conf["runtimeConfig"] = caps
        env = {
            "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
            "CNI_COMMAND": verb, "CNI_CONTAINERID": att.container_id, "CNI_NETNS": att.netns,
            "CNI_IFNAME": att.ifname, "CNI_ARGS": att.cni_args, "CNI_PATH": ":".join(self.cni_path),
        }
        proc = subprocess.run([self._find(plugin["type"])], input=json.dumps(conf).encode(), env=env,
                              capture_output=True, check=False, timeout=60)
        out = proc.stdout.decode().strip()
        answer = json.loads(out) if out else None
        if proc.returncode != 0:
            raise PluginError(plugin["type"], verb, proc.returncode, answer, proc.stderr.decode())
        return answer

    def add(self, att: Attachment) -> dict:
        prev = None
        for plugin in self.conflist["plugins"]:
            att.done.append(plugin["type"])
            prev = self._exec(plugin, "ADD", att, prev)
        att.result = prev
        return prev or {}

    def check(self, att: Attachment) -> None:
        for plugin in self.conflist["plugins"]:
            self._exec(plugin, "CHECK", att, att.result)

    def delete(self, att: Attachment) -> None:
        """DEL in reverse order; every plugin runs even when an earlier one failed."""
        errors = []
        for plugin in reversed(self.conflist["plugins"]):
            try:
                self._exec(plugin, "DEL", att, att.result)
            except (PluginError, FileNotFoundError, subprocess.TimeoutExpired) as e:
                errors.append(str(e))
        if errors:
            raise RuntimeError("; ".join(errors))
