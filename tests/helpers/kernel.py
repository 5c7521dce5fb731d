"""Network namespaces and kernel read-back through iproute2, tc, bridge, iptables and nft.

Every function takes ``netns`` as a namespace name (``pycni-1a2b``), a path (``/var/run/netns/NAME``
or any bind-mounted nsfs path), an object with a ``path`` attribute, or ``None`` for the host.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

NETNS_DIRS = ("/var/run/netns", "/run/netns")
TIMEOUT = 30


def is_root() -> bool:
    return os.geteuid() == 0


def _ns_name_or_path(netns: Any) -> tuple[str | None, str | None]:
    """Split ``netns`` into (name usable with ``ip -n``, or path needing nsenter)."""
    if netns is None:
        return None, None
    netns = str(getattr(netns, "path", netns))
    if "/" not in netns:
        return netns, None
    head, tail = os.path.split(os.path.normpath(netns))
    if head in NETNS_DIRS:
        return tail, None
    return None, netns


def run(argv: list[str] | tuple[str, ...], *, check: bool = True, timeout: float = TIMEOUT,
        input: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command with text output; on ``check`` a failure raises with stdout and stderr."""
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, input=input, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{list(argv)} exited {proc.returncode}\nstdout={proc.stdout!r}\n"
                             f"stderr={proc.stderr!r}")
    return proc


def ns_argv(netns: Any, *cmd: str, keep_mounts: bool = False) -> list[str]:
    """The command line that runs ``cmd`` inside ``netns``: the one way the bench enters a network
    namespace (``ip netns exec`` for a named one, which also gives /etc/netns and /sys of the
    namespace in a mount namespace of its own; ``nsenter`` for any other nsfs path; ``cmd`` itself
    for ``None``). ``keep_mounts``: ``nsenter --net`` whatever the name, so ``cmd`` stays in this
    mount namespace, as a runtime runs a plugin (and as a warm process serves only callers of its
    own mount namespace)."""
    name, path = _ns_name_or_path(netns)
    if name is not None and keep_mounts:
        path = str(getattr(netns, "path", "") or f"/run/netns/{name}")
        name = None
    if name is not None:
        return ["ip", "netns", "exec", name, *cmd]
    if path is not None:
        return ["nsenter", f"--net={path}", "--", *cmd]
    return list(cmd)


def ns_exec(netns: Any, *cmd: str, check: bool = True, timeout: float = TIMEOUT,
            input: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` inside network namespace ``netns`` (name or path) and return the completed process."""
    return run(ns_argv(netns, *cmd), check=check, timeout=timeout, input=input, env=env)


def _tool_json(tool: str, args: tuple[str, ...], netns: Any, check: bool) -> Any:
    name, path = _ns_name_or_path(netns)
    argv = [tool, "-j"]
    if name is not None:
        argv += ["-n", name]
    argv += list(args)
    proc = run(ns_argv(path, *argv), check=check)
    if proc.returncode != 0:
        return None
    text = proc.stdout.strip()
    return json.loads(text) if text else []


def ip_json(*args: str, netns: Any = None, check: bool = True) -> Any:
    """``ip -j ARGS`` parsed, e.g. ``ip_json("addr", "show", "dev", "eth0", netns=ns)``.

    Empty output gives ``[]``; with ``check=False`` a failing command gives ``None``.
    """
    return _tool_json("ip", args, netns, check)


def tc_json(*args: str, netns: Any = None, check: bool = True) -> Any:
    """``tc -j ARGS`` parsed, e.g. ``tc_json("qdisc", "show", "dev", "eth0")``."""
    return _tool_json("tc", args, netns, check)


def bridge_json(*args: str, netns: Any = None, check: bool = True) -> Any:
    """``bridge -j ARGS`` parsed, e.g. ``bridge_json("link", "show")`` or ``bridge_json("vlan", "show")``."""
    return _tool_json("bridge", args, netns, check)


def link(name: str, netns: Any = None) -> dict | None:
    """``ip -d -j link show NAME`` as one dict, or ``None`` if there is no such link."""
    found = ip_json("-d", "link", "show", "dev", name, netns=netns, check=False)
    return found[0] if found else None


def link_exists(name: str, netns: Any = None) -> bool:
    return link(name, netns) is not None


def addresses(ifname: str, netns: Any = None, *, scope: str | None = "global") -> list[str]:
    """The CIDR addresses (``10.1.0.2/24``) on ``ifname`` of ``scope`` (``"link"``, ``"host"``;
    ``None`` for all)."""
    found = ip_json("addr", "show", "dev", ifname, netns=netns)
    return [f"{a['local']}/{a['prefixlen']}" for entry in found for a in entry.get("addr_info", [])
            if scope is None or a.get("scope") == scope]


def delete_link(name: str, netns: Any = None) -> None:
    """Delete a link if it exists; silently nothing if it does not."""
    nsname, path = _ns_name_or_path(netns)
    argv = ["ip"] + (["-n", nsname] if nsname else []) + ["link", "del", "dev", name]
    if link_exists(name, netns):
        run(ns_argv(path, *argv), check=False)


# ---------------------------------------------------------------- namespaces

def netns_path(name: str) -> str:
    return f"{NETNS_DIRS[0]}/{name}"


def netns_exists(name: str) -> bool:
    return any(os.path.exists(f"{d}/{name}") for d in NETNS_DIRS)


def add_netns(name: str) -> str:
    """``ip netns add NAME`` and return its path."""
    run(["ip", "netns", "add", name])
    return netns_path(name)


def del_netns(name: str) -> None:
    """``ip netns del NAME`` if it exists (a namespace the test already removed is fine)."""
    if netns_exists(name):
        run(["ip", "netns", "del", name], check=False)


@dataclass(frozen=True)
class NetNS:
    """A network namespace the bench made (the ``netns`` fixture): ``name``, ``path`` and commands
    run inside it."""

    name: str
    path: str

    def exec(self, *cmd: str, check: bool = True, timeout: float = TIMEOUT,
             input: str | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return ns_exec(self.name, *cmd, check=check, timeout=timeout, input=input, env=env)

    def json(self, *cmd: str) -> Any:
        """A JSON-printing tool (``ip -j``, ``bridge -j``, ``tc -j``) run in the namespace."""
        out = self.exec(*cmd).stdout.strip()
        return json.loads(out) if out else []

    def link(self, name: str) -> dict:
        (info,) = self.json("ip", "-j", "-d", "link", "show", "dev", name)
        return info

    def sysctl(self, key: str) -> str:
        return self.exec("sysctl", "-n", key).stdout.strip()

    def __str__(self) -> str:
        return self.path


# ---------------------------------------------------------------- host snapshot

_VOLATILE_KEYS = frozenset({"valid_life_time", "preferred_life_time", "expires", "used", "stats",
                            "stats64"})
_COUNTERS = re.compile(r"\[\d+:\d+\]")
_NFT_COUNTER = re.compile(r"counter packets \d+ bytes \d+")


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if k not in _VOLATILE_KEYS}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def _text(argv: list[str], netns: Any) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    proc = ns_exec(netns, *argv, check=False)
    if proc.returncode != 0:
        return f"<{argv[0]} exited {proc.returncode}: {proc.stderr.strip()}>"
    return proc.stdout


def _iptables_save(tool: str, netns: Any) -> str | None:
    out = _text([tool], netns)
    if out is None:
        return None
    return "\n".join(_COUNTERS.sub("", ln) for ln in out.splitlines() if not ln.startswith("#"))


def _nft_ruleset(netns: Any) -> str | None:
    out = _text(["nft", "list", "ruleset"], netns)
    return None if out is None else _NFT_COUNTER.sub("counter", out)


@dataclass
class HostSnapshot:
    """Links, addresses, routes and firewall rules of one namespace, without counters and lifetimes."""

    links: list = field(default_factory=list)
    addresses: list = field(default_factory=list)
    routes: list = field(default_factory=list)
    iptables: str | None = None
    ip6tables: str | None = None
    nft: str | None = None

    def diff(self, other: HostSnapshot) -> str:
        """A readable description of what differs from ``other``; empty when equal."""
        out = []
        for name in ("links", "addresses", "routes"):
            mine = {json.dumps(x, sort_keys=True) for x in getattr(self, name)}
            theirs = {json.dumps(x, sort_keys=True) for x in getattr(other, name)}
            out += [f"{name} only before: {x}" for x in sorted(mine - theirs)]
            out += [f"{name} only after: {x}" for x in sorted(theirs - mine)]
        for name in ("iptables", "ip6tables", "nft"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine != theirs:
                a = set((mine or "").splitlines())
                b = set((theirs or "").splitlines())
                out += [f"{name} only before: {x}" for x in sorted(a - b)]
                out += [f"{name} only after: {x}" for x in sorted(b - a)]
                if a == b:
                    out.append(f"{name}: same lines, different order")
        return "\n".join(out)


def host_snapshot(netns: Any = None, *, firewall: bool = True) -> HostSnapshot:
    """Capture the namespace's (default: the host's) links, addresses, routes (all tables, v4 and v6)
    and, with ``firewall``, ``iptables-save``/``ip6tables-save``/``nft list ruleset`` output.

    Compare two snapshots with ``==``; ``before.diff(after)`` says what changed.
    """
    snap = HostSnapshot(
        links=_strip(ip_json("link", "show", netns=netns)),
        addresses=_strip(ip_json("addr", "show", netns=netns)),
        routes=_strip(ip_json("-4", "route", "show", "table", "all", netns=netns)
                      + ip_json("-6", "route", "show", "table", "all", netns=netns)),
    )
    if firewall:
        snap.iptables = _iptables_save("iptables-save", netns)
        snap.ip6tables = _iptables_save("ip6tables-save", netns)
        snap.nft = _nft_ruleset(netns)
    return snap


def host_changes(before: HostSnapshot, after: HostSnapshot,
                 mentioning: Iterable[object] | None = None) -> list[str]:
    """The differences between two snapshots, or only those naming one of `mentioning`.

    The host is shared with whatever else runs on the machine; a test that names its own unique
    objects (bridge, subnet, network, container ID) counts only the changes it can have caused.
    """
    lines = before.diff(after).splitlines() if before != after else []
    if mentioning is not None:
        names = [str(n) for n in mentioning]
        lines = [line for line in lines if any(n in line for n in names)]
    return lines


def assert_host_unchanged(before: HostSnapshot, after: HostSnapshot,
                          mentioning: Iterable[object] | None = None) -> None:
    """Assert two snapshots are equal (in what names `mentioning`, if given), naming the differences."""
    changes = host_changes(before, after, mentioning)
    if changes:
        raise AssertionError("host state changed:\n" + "\n".join(changes))
