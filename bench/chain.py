"""Run a network configuration list the way libcni does, timing only the plugin processes.

What each plugin gets, in which order and with which `prevResult`, is `cni.ops.libcni`'s (the one
place pycni follows libcni, shared with `pycni status`/`gc`); here only how a plugin process is
started: through ``spawn``, so the time of a chain is the sum of its plugin processes'
spawn-to-reap times and building JSON between plugins is not counted. A chain stops at the first
failing plugin, as libcni's ``*NetworkList`` calls do.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from cni.ops.libcni import Answer, NetList, RuntimeConf, run_list

from . import spawn

BASE_ENV_KEYS = ("PATH", "LANG", "LC_ALL")


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

    def _spawn(self, executable: str, env: dict[str, str], stdin: bytes) -> Answer:
        """libcni's plugin execution through ``spawn``: timed, the process's own figures kept."""
        ex = spawn.run(executable, env, stdin, timeout=self.timeout, rss_helper=self.rss_helper)
        ok = ex.rc == 0 and not ex.timed_out
        why = "" if ok else "timed out" if ex.timed_out else f"exit {ex.rc}"
        details = "" if ok else (f"{ex.stdout.decode(errors='replace').strip()} "
                                 f"{ex.stderr.decode(errors='replace').strip()[-400:]}").strip()
        return Answer(ok, None, why, details, ex.stdout, ex.seconds, ex.maxrss_kib)

    def _chain(self, verb: str, netlist: NetList, pod: RuntimeConf, cached: dict[str, Any] | None,
               ) -> ChainRun:
        done = run_list(verb, netlist, pod, self.bin_dir, self._spawn, cached, base_env=self.base_env)
        calls = [Call(t, a.seconds, a.maxrss_kib) for t, a in done.answers]
        run = ChainRun(verb, done.ok, calls, done.result)
        for plugin_type, answer in done.answers:
            if not answer.ok:
                details = f": {answer.details}" if answer.details else ""
                run.error = f"{plugin_type} {verb} {answer.msg}{details}"
        return run

    def add(self, netlist: NetList, pod: RuntimeConf) -> ChainRun:
        return self._chain("ADD", netlist, pod, None)

    def check(self, netlist: NetList, pod: RuntimeConf, result: dict[str, Any] | None) -> ChainRun:
        return self._chain("CHECK", netlist, pod, result)

    def delete(self, netlist: NetList, pod: RuntimeConf, result: dict[str, Any] | None) -> ChainRun:
        return self._chain("DEL", netlist, pod, result)

    def version(self, plugin_type: str) -> spawn.Exec:
        """VERSION of one type: tells whether this directory can serve it at all."""
        env = dict(self.base_env, CNI_COMMAND="VERSION", CNI_CONTAINERID="", CNI_NETNS="", CNI_ARGS="",
                   CNI_IFNAME="", CNI_PATH=self.bin_dir)
        return spawn.run(os.path.join(self.bin_dir, plugin_type), env, b'{"cniVersion":"1.0.0"}',
                         timeout=self.timeout, rss_helper=self.rss_helper)
