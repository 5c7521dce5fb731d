"""Run a network configuration list the way libcni does, timing only the plugin processes.

What each plugin gets follows libcni (containernetworking/cni 1.x, ``libcni/api.go``):
- the plugin's own config with ``name`` and ``cniVersion`` of the list injected, ``prevResult`` when
  there is one, and ``runtimeConfig`` holding the capability arguments the plugin declares in
  ``capabilities``;
- ADD runs the plugins in order, each with the previous plugin's result; the last result is the
  attachment's result (libcni caches it);
- CHECK runs them in order and DEL in reverse order, each with that cached final result as
  ``prevResult`` (lists of version 0.4.0 or later);
- the environment is the runtime's own plus ``CNI_COMMAND``, ``CNI_CONTAINERID``, ``CNI_NETNS``,
  ``CNI_ARGS``, ``CNI_IFNAME`` and ``CNI_PATH``; the executable is ``CNI_PATH``/``type`` with that
  path as argv[0].
A chain stops at the first failing plugin, as libcni's ``*NetworkList`` calls do. The time of a chain
is the sum of its plugin processes' spawn-to-reap times (see ``spawn``), so building JSON between
plugins is not counted.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from . import spawn

BASE_ENV_KEYS = ("PATH", "LANG", "LC_ALL")


@dataclass(frozen=True)
class NetList:
    """A configuration list: its name, version and the plugin configs (without injected keys)."""

    name: str
    cni_version: str
    plugins: tuple[dict[str, Any], ...]

    @property
    def types(self) -> tuple[str, ...]:
        return tuple(p["type"] for p in self.plugins)


@dataclass
class Pod:
    """One attachment: what a runtime knows about the sandbox."""

    container_id: str
    netns: str
    ifname: str = "eth0"
    cni_args: str = ""
    cap_args: dict[str, Any] = field(default_factory=dict)


@dataclass
class Call:
    """One plugin process of a chain."""

    plugin: str
    seconds: float
    maxrss_kib: int


@dataclass
class ChainRun:
    """One verb over a whole list. ``seconds`` is the sum of its plugins' process times."""

    verb: str
    ok: bool
    calls: list[Call]
    result: dict[str, Any] | None = None
    error: str = ""

    @property
    def seconds(self) -> float:
        return sum(c.seconds for c in self.calls)


def one_config(plugin: dict[str, Any], netlist: NetList, prev: dict[str, Any] | None,
               cap_args: dict[str, Any]) -> bytes:
    """The stdin of one plugin, as libcni's ``buildOneConfig`` and ``injectRuntimeConfig`` make it."""
    conf = dict(plugin)
    conf["name"] = netlist.name
    conf["cniVersion"] = netlist.cni_version
    if prev is not None:
        conf["prevResult"] = prev
    runtime = {cap: cap_args[cap] for cap, on in (plugin.get("capabilities") or {}).items()
               if on and cap in cap_args}
    if runtime:
        conf["runtimeConfig"] = runtime
    return json.dumps(conf).encode()


class Driver:
    """Executes lists from one plugin directory (``CNI_PATH``)."""

    def __init__(self, bin_dir: str, timeout: float = spawn.DEFAULT_TIMEOUT, rss_helper: str | None = None,
                 env: dict[str, str] | None = None):
        self.bin_dir = str(bin_dir)
        self.timeout = timeout
        self.rss_helper = rss_helper
        self.extra_env = dict(env or {})  # e.g. PYCNI_WARM_SOCKET: which launch path our plugins take
        self.base_env = {k: os.environ[k] for k in BASE_ENV_KEYS if k in os.environ}
        self.base_env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        self.base_env.update(self.extra_env)

    def env(self, verb: str, pod: Pod) -> dict[str, str]:
        env = dict(self.base_env)
        env.update(CNI_COMMAND=verb, CNI_CONTAINERID=pod.container_id, CNI_NETNS=pod.netns,
                   CNI_ARGS=pod.cni_args, CNI_IFNAME=pod.ifname, CNI_PATH=self.bin_dir)
        return env

    def exec_one(self, plugin_type: str, verb: str, pod: Pod, stdin: bytes) -> spawn.Exec:
        path = os.path.join(self.bin_dir, plugin_type)
        return spawn.run(path, self.env(verb, pod), stdin, timeout=self.timeout, rss_helper=self.rss_helper)

    def _chain(self, verb: str, netlist: NetList, pod: Pod, prev_for: Any,
               plugins: tuple[dict[str, Any], ...]) -> ChainRun:
        run = ChainRun(verb, True, [])
        prev = prev_for
        for plugin in plugins:
            stdin = one_config(plugin, netlist, prev, pod.cap_args)
            ex = self.exec_one(plugin["type"], verb, pod, stdin)
            run.calls.append(Call(plugin["type"], ex.seconds, ex.maxrss_kib))
            if ex.rc != 0 or ex.timed_out:
                run.ok = False
                why = "timed out" if ex.timed_out else f"exit {ex.rc}"
                run.error = (f"{plugin['type']} {verb} {why}: {ex.stdout.decode(errors='replace').strip()}"
                             f" {ex.stderr.decode(errors='replace').strip()[-400:]}").strip()
                return run
            if verb == "ADD":
                try:
                    prev = json.loads(ex.stdout)
                except ValueError:
                    run.ok = False
                    run.error = f"{plugin['type']} ADD printed no JSON result: {ex.stdout[:200]!r}"
                    return run
        if verb == "ADD":
            run.result = prev
        return run

    def add(self, netlist: NetList, pod: Pod) -> ChainRun:
        return self._chain("ADD", netlist, pod, None, netlist.plugins)

    def check(self, netlist: NetList, pod: Pod, result: dict[str, Any] | None) -> ChainRun:
        return self._chain("CHECK", netlist, pod, result, netlist.plugins)

    def delete(self, netlist: NetList, pod: Pod, result: dict[str, Any] | None) -> ChainRun:
        return self._chain("DEL", netlist, pod, result, tuple(reversed(netlist.plugins)))

    def version(self, plugin_type: str) -> spawn.Exec:
        """VERSION of one type: tells whether this directory can serve it at all."""
        pod = Pod(container_id="", netns="", ifname="")
        return self.exec_one(plugin_type, "VERSION", pod, b'{"cniVersion":"1.0.0"}')
