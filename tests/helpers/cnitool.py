"""Build and drive ``tests/tools/cnitool``, our small Go driver over libcni (Debian's 1.1.2).

It runs configuration lists the way a container runtime does: plugin lookup on CNI_PATH, chaining
with ``prevResult``, the result cache, version conversion. On failure it prints one JSON line
``{"code": N, "msg": ..., "details": ..., "error": ...}`` on stdout and exits 1; code 999 means the
error did not come from a plugin (libcni's own error, e.g. a missing config or plugin).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from .kernel import ns_argv
from .outcome import Outcome, parse_json

SOURCE_DIR = Path(__file__).resolve().parent.parent / "tools" / "cnitool"
GOCODE = "/usr/share/gocode"
LIBCNI = f"{GOCODE}/src/github.com/containernetworking/cni/libcni"
TIMEOUT = 120


def build_cnitool(work_dir: Path) -> Path:
    """Build the driver offline in GOPATH mode into ``work_dir``; return the executable's path.

    The Go build cache also goes under ``work_dir`` so nothing is left in the user's home.
    Raises ``RuntimeError`` when Go or libcni's sources are missing, or the build fails.
    """
    go = shutil.which("go")
    if go is None:
        raise RuntimeError("`go` not found (Debian package golang-go)")
    if not os.path.isdir(LIBCNI):
        raise RuntimeError(f"{LIBCNI} missing (Debian package golang-github-appc-cni-dev)")
    work_dir.mkdir(parents=True, exist_ok=True)
    out = work_dir / "cnitool"
    env = dict(os.environ)
    env.update(
        GOPATH=f"{work_dir / 'gopath'}:{GOCODE}",
        GO111MODULE="off",
        GOFLAGS="",
        CGO_ENABLED="0",
        GOCACHE=str(work_dir / "gocache"),
        GOTMPDIR="",
    )
    proc = subprocess.run([go, "build", "-o", str(out), "."], cwd=SOURCE_DIR, env=env,
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"building cnitool failed:\n{proc.stdout}{proc.stderr}")
    shutil.rmtree(work_dir / "gocache", ignore_errors=True)
    return out


def _path_list(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return os.pathsep.join(str(v) for v in value)
    return str(value)


def _cni_args(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict):
        return ";".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ";".join(f"{k}={v}" for k, v in value)
    return str(value)


class Cnitool:
    """Callable wrapper around the built driver.

    ``cnitool(cmd, network, netns_path, *, netconf_dir, cni_path, ifname="eth0", cap_args=None,
    cni_args=None, container_id=None, cache_dir=None, extra_env=None, timeout=120) -> Outcome``

    - ``cmd``: ``add``, ``check`` or ``del`` (``version`` takes the plugin type as ``network`` and
      needs no netns; see :meth:`version`).
    - ``netns_path``: the namespace path (an object with ``.path`` works); ``""`` passes an empty
      CNI_NETNS (DEL without a namespace).
    - ``cni_path``: a directory or a list of directories (plugins and their IPAM delegates).
    - ``cap_args``: dict, sent as CAP_ARGS JSON. ``cni_args``: dict, list of pairs or a ``K=V;K=V``
      string. ``container_id``: overrides the derived ``cnitool-<hex>`` id.
    - ``cache_dir``: libcni's result cache (never /var/lib/cni); defaults to ``default_cache_dir``.

    ``cnitool.inside(node)`` is the same driver run inside an emulated node's namespace (its own
    links, iptables and nft rules): the one way the bench runs libcni in a node.
    """

    def __init__(self, binary: Path, default_cache_dir: Path, netns: Any = None, env: dict | None = None,
                 keep_mounts: bool = False):
        self.binary = Path(binary)
        self.default_cache_dir = Path(default_cache_dir)
        self.netns = netns
        self.keep_mounts = keep_mounts  # ns_argv's: enter the network namespace only
        self.env = dict(env or {})  # every call's environment on top of ours (e.g. the launch path)

    def inside(self, netns: Any, *, binary: Path | None = None, cache_dir: Path | None = None,
               env: dict | None = None, keep_mounts: bool = False) -> Cnitool:
        """This driver (or ``binary``, one with the same command line such as cnidrive) run inside
        ``netns`` (helpers.kernel.ns_argv), with ``cache_dir`` as its default result cache and
        ``env`` in every call's environment (libcni passes it on to the plugins)."""
        return Cnitool(binary or self.binary, cache_dir or self.default_cache_dir, netns,
                       {**self.env, **(env or {})}, keep_mounts)

    def _env(self, netconf_dir: Any, cni_path: Any, ifname: str, cap_args: Any, cni_args: Any,
             container_id: str | None, cache_dir: Any, extra_env: dict | None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("CNI_") and k not in ("NETCONFPATH", "CAP_ARGS")}
        env["CNI_PATH"] = _path_list(cni_path)
        env["CNI_IFNAME"] = ifname
        env["CNI_CACHE_DIR"] = str(cache_dir if cache_dir is not None else self.default_cache_dir)
        if netconf_dir is not None:
            env["NETCONFPATH"] = str(netconf_dir)
        if cap_args is not None:
            env["CAP_ARGS"] = cap_args if isinstance(cap_args, str) else json.dumps(cap_args)
        args = _cni_args(cni_args)
        if args is not None:
            env["CNI_ARGS"] = args
        if container_id is not None:
            env["CNI_CONTAINERID"] = container_id
        for k, v in {**self.env, **(extra_env or {})}.items():
            if v is None:
                env.pop(k, None)
            else:
                env[k] = str(v)
        return env

    def _run(self, argv: list[str], env: dict[str, str], timeout: float) -> Outcome:
        try:
            proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"cnitool timed out after {timeout}s: {argv}\n"
                                 f"stdout={exc.stdout!r}\nstderr={exc.stderr!r}") from None
        return Outcome(proc.returncode, proc.stdout, proc.stderr, parse_json(proc.stdout),
                       tuple(argv), env)

    def __call__(self, cmd: str, network: str, netns_path: Any = "", *, netconf_dir: Any,
                 cni_path: Any, ifname: str = "eth0", cap_args: Any = None, cni_args: Any = None,
                 container_id: str | None = None, cache_dir: Any = None, extra_env: dict | None = None,
                 timeout: float = TIMEOUT) -> Outcome:
        netns_path = str(getattr(netns_path, "path", netns_path))
        env = self._env(netconf_dir, cni_path, ifname, cap_args, cni_args, container_id, cache_dir,
                        extra_env)
        return self._run(ns_argv(self.netns, str(self.binary), cmd, network, netns_path,
                                 keep_mounts=self.keep_mounts), env, timeout)

    def version(self, plugin_type: str, *, cni_path: Any, timeout: float = TIMEOUT) -> Outcome:
        """``cnitool version TYPE``: libcni's GetVersionInfo; stdout ``{"supportedVersions": [...]}``."""
        env = self._env(None, cni_path, "eth0", None, None, None, None, None)
        return self._run([str(self.binary), "version", plugin_type], env, timeout)

    def container_id(self, netns_path: Any) -> str:
        """The container id the driver derives for ``netns_path`` (as upstream cnitool does)."""
        path = os.path.abspath(str(getattr(netns_path, "path", netns_path)))
        return "cnitool-" + hashlib.sha512(path.encode()).digest()[:10].hex()

    def cache_file(self, network: str, netns_path: Any, *, ifname: str = "eth0",
                   container_id: str | None = None, cache_dir: Any = None) -> Path:
        """Where libcni keeps the cached result of an attachment."""
        cid = container_id or self.container_id(netns_path)
        base = Path(cache_dir) if cache_dir is not None else self.default_cache_dir
        return base / "results" / f"{network}-{cid}-{ifname}"
