"""The hostile-input corpus: one row per call an attacker or a broken node could make.

Each row says which plugin and verb, what is changed (the config, the CNI_* environment, files
planted under the test's state directory) and the exact CNI error code that must come back.
`test_corpus.py` runs every row in a network namespace of its own and holds each to the same
contract. A new plugin adds its rows with `rows_for_<plugin>` in the same shape (`PLUGINS` gives
each plugin's base config).

Every group says in its comment how the code before this corpus failed it ("old: ..."), or which
path that did fail it the group guards.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------- what one test gives a row


@dataclass
class World:
    """One case's surroundings: namespaces, a private state directory, unique names."""

    host_ns: str  # path of the namespace the plugin runs in (the case's "host")
    container_ns: str  # path of the container's namespace
    state: Path  # private directory: dataDir, planted files, fake tools
    network: str
    bridge: str
    subnet: str  # e.g. 10.201.7.0/24
    container_id: str
    env: dict[str, str] = field(default_factory=dict)  # every call's: the launch path (PYCNI_WARM_SOCKET)

    @property
    def data_dir(self) -> Path:
        return self.state / "ipam"

    @property
    def network_dir(self) -> Path:
        return self.data_dir / self.network

    @property
    def tools(self) -> Path:
        """A directory for fake programs (put first on PATH or CNI_PATH by a row)."""
        path = self.state / "tools"
        path.mkdir(exist_ok=True)
        return path


def ipam(w: World) -> dict:
    return {"type": "host-local", "subnet": w.subnet, "dataDir": str(w.data_dir)}


def prev_result(w: World, version: str) -> dict:
    ip = {"interface": 1, "address": w.subnet.rsplit(".", 1)[0] + ".5/24"}
    interfaces = [{"name": "vethx"}, {"name": "eth0", "sandbox": w.container_ns}]
    return {"cniVersion": version, "interfaces": interfaces, "ips": [ip]}


def base_config(plugin: str, w: World, version: str, command: str) -> dict:
    """A valid config of `plugin` for `command` (the row then breaks one thing in it)."""
    config: dict[str, Any] = {"cniVersion": version, "name": w.network, "type": plugin}
    if plugin == "bridge":
        config.update(bridge=w.bridge, isGateway=False, ipam=ipam(w))
    elif plugin in ("host-local", "ptp"):
        config["ipam"] = ipam(w)
    elif plugin == "bandwidth" and command in ("ADD", "CHECK"):
        config["prevResult"] = prev_result(w, version)
    if plugin in ("bridge", "ptp") and command == "CHECK":
        config["prevResult"] = prev_result(w, version)
    return config


PLUGINS = ("bridge", "ptp", "host-local", "bandwidth", "loopback")
NETNS_PLUGINS = ("bridge", "ptp", "bandwidth", "loopback")  # the ones that enter CNI_NETNS

# ---------------------------------------------------------------- a row


@dataclass
class Case:
    id: str
    plugin: str
    command: str
    code: int
    needles: tuple[str, ...] = ()  # must appear in msg + details
    config: Callable[[dict, World], None] | None = None  # edits the config in place
    stdin: Callable[[World], bytes] | None = None  # replaces it entirely
    env: Callable[[World], dict[str, str | None]] | None = None  # CNI_* and more; None unsets
    plant: Callable[[World], None] | None = None  # files made before the "before" snapshot
    seed: str | None = None  # legitimate state made first, by name (test_corpus.seed)
    version: str = ""  # default: 1.1.0 for GC/STATUS, else 1.0.0

    @property
    def cni_version(self) -> str:
        return self.version or ("1.1.0" if self.command in ("GC", "STATUS") else "1.0.0")


# ---------------------------------------------------------------- hostile files


def make_kind(kind: str, where: Path) -> str:
    """Make a file of `kind` at `where` (or name a system one); returns the path to hand over."""
    where.parent.mkdir(parents=True, exist_ok=True)
    if kind == "fifo":
        os.mkfifo(where)
    elif kind == "fifo-link":
        target = where.with_name(where.name + ".fifo")
        os.mkfifo(target)
        os.symlink(target, where)
    elif kind == "device":
        os.mknod(where, stat.S_IFCHR | 0o600, os.makedev(1, 3))  # a /dev/null of our own
    elif kind == "directory":
        where.mkdir()
    elif kind == "huge":
        with open(where, "wb") as f:
            f.truncate(8 << 20)  # sparse: 8 MiB of zeros, past every read bound
    elif kind == "empty":
        where.write_bytes(b"")
    elif kind == "loop":
        os.symlink(where, where)
    elif kind == "file-link":
        target = where.with_name(where.name + ".elsewhere")
        target.write_bytes(b"")
        os.symlink(target, where)
    else:
        return SYSTEM[kind]
    return str(where)


SYSTEM = {"dev-null": "/dev/null", "dev-zero": "/dev/zero", "uts-ns": "/proc/self/ns/uts",
          "mnt-ns": "/proc/self/ns/mnt", "dev-dir": "/dev", "tty": "/dev/tty"}


def planted(kind: str, name: str) -> tuple[Callable[[World], None], Callable[[World], str]]:
    """(plant, path): plant a `kind` file named `name` in the state directory; path finds it."""
    made: dict[int, str] = {}

    def plant(w: World) -> None:
        made[id(w)] = make_kind(kind, w.state / name)

    def path(w: World) -> str:
        return made.get(id(w)) or make_kind(kind, w.state / name)

    return plant, path


def env_netns(path: Callable[[World], str]) -> Callable[[World], dict]:
    return lambda w: {"CNI_NETNS": path(w)}


def set_ipam(**values: Any) -> Callable[[dict, World], None]:
    def change(config: dict, w: World) -> None:
        target = config.get("ipam", config)
        target.update({k: (v(w) if callable(v) else v) for k, v in values.items()})
    return change


def set_top(**values: Any) -> Callable[[dict, World], None]:
    def change(config: dict, w: World) -> None:
        config.update({k: (v(w) if callable(v) else v) for k, v in values.items()})
    return change


# ---------------------------------------------------------------- the groups

ROWS: list[Case] = []


def rows(*cases: Case) -> None:
    ROWS.extend(cases)


# -- 1. CNI_NETNS that is no network namespace, on ADD and CHECK (code 3).
# old: a FIFO (or a symlink to one) blocked open(2) for ever; the other kinds guard that same open,
# which now looks at the file before opening it (a device is never opened).
NETNS_KINDS = ("fifo", "fifo-link", "device", "dev-null", "dev-zero", "directory", "huge", "empty",
               "uts-ns", "mnt-ns", "loop", "tty")
for _plugin in NETNS_PLUGINS:
    for _command in ("ADD", "CHECK"):
        for _kind in NETNS_KINDS:
            _plant, _path = planted(_kind, "netns")
            rows(Case(f"netns-{_kind}-{_plugin}-{_command.lower()}", _plugin, _command, 3, ("netns",),
                      env=env_netns(_path), plant=_plant))

# -- 2. resolvConf that is no regular file, or too big (code 5).
# old: a FIFO hung ADD, /dev/zero was read without end, /dev/null and a device answered with no DNS.
RESOLV_KINDS = ("fifo", "fifo-link", "device", "dev-null", "dev-zero", "directory", "huge")
for _plugin in ("host-local", "bridge", "ptp"):
    for _kind in RESOLV_KINDS:
        _plant, _path = planted(_kind, "resolv.conf")
        rows(Case(f"resolvconf-{_kind}-{_plugin}", _plugin, "ADD", 5, ("resolvConf",),
                  config=set_ipam(resolvConf=_path), plant=_plant))

# -- 3. rangeFromFile that is no regular file, or too big (code 7), on every verb that reads it.
# old: a FIFO hung ADD, CHECK and STATUS, /dev/zero was read without end; a device, a directory and
# a huge file guard the same open, which now checks the file first and reads at most 1 MiB.
for _plugin, _command in (("host-local", "ADD"), ("host-local", "CHECK"), ("host-local", "STATUS"),
                          ("bridge", "ADD"), ("ptp", "ADD"), ("ptp", "STATUS")):
    for _kind in ("fifo", "fifo-link", "device", "dev-zero", "directory", "huge"):
        _plant, _path = planted(_kind, "ranges.json")

        def _drop_subnet(config: dict, w: World, _path=_path) -> None:
            config["ipam"].pop("subnet", None)
            config["ipam"]["rangeFromFile"] = _path(w)

        rows(Case(f"rangefile-{_kind}-{_plugin}-{_command.lower()}", _plugin, _command, 7,
                  ("rangeFromFile",), config=_drop_subnet, plant=_plant))


# -- 4. The lock file in the network's directory is no regular file (code 5), on every verb.
# old: a FIFO blocked open(2) for ever (ADD, DEL, CHECK, GC); a device node was locked as if it were
# the lock. A directory (EISDIR) and the symlinks (O_NOFOLLOW) guard the checks that now refuse them.
def _lock_plant(kind: str) -> Callable[[World], None]:
    def plant(w: World) -> None:
        w.network_dir.mkdir(parents=True, exist_ok=True)
        (w.network_dir / "lock").unlink(missing_ok=True)
        make_kind(kind, w.network_dir / "lock")
    return plant


for _plugin, _command in (("host-local", "ADD"), ("host-local", "DEL"), ("host-local", "CHECK"),
                          ("host-local", "GC"), ("bridge", "ADD"), ("bridge", "DEL"), ("bridge", "GC"),
                          ("ptp", "ADD"), ("ptp", "DEL"), ("ptp", "GC")):
    for _kind in ("fifo", "fifo-link", "device", "directory", "file-link"):
        rows(Case(f"lock-{_kind}-{_plugin}-{_command.lower()}", _plugin, _command, 5,
                  ("IPAM data directory",), plant=_lock_plant(_kind)))


# -- 5. dataDir and its network directory are no directories (code 5), and NUL in any path (code 7).
# old: a NUL byte raised ValueError (999); the rest guard the directory open, which now goes through
# the same mkdir -p as the 0755 fix.
def _data_dir_plant(kind: str, at_network: bool) -> Callable[[World], None]:
    def plant(w: World) -> None:
        shutil.rmtree(w.data_dir, ignore_errors=True)
        if at_network:
            w.data_dir.mkdir(parents=True, exist_ok=True)
            make_kind(kind, w.network_dir)
        else:
            make_kind(kind, w.data_dir)
    return plant


for _at_network in (False, True):
    for _kind in ("fifo", "empty", "device", "loop"):
        for _plugin in ("host-local", "bridge", "ptp"):
            where = "netdir" if _at_network else "datadir"
            rows(Case(f"{where}-{_kind}-{_plugin}-add", _plugin, "ADD", 5, ("IPAM data directory",),
                      plant=_data_dir_plant(_kind, _at_network)))

for _key in ("dataDir", "resolvConf", "rangeFromFile"):
    for _plugin, _command in (("host-local", "ADD"), ("host-local", "CHECK"), ("host-local", "STATUS"),
                              ("bridge", "ADD")):
        rows(Case(f"nul-{_key.lower()}-{_plugin}-{_command.lower()}", _plugin, _command, 7, (_key, "NUL"),
                  config=set_ipam(**{_key: lambda w: str(w.state) + "/x\0y"})))
    for _plugin in ("host-local", "bridge"):
        if _key == "dataDir":
            for _command in ("DEL", "GC"):
                rows(Case(f"nul-datadir-{_plugin}-{_command.lower()}", _plugin, _command, 7,
                          ("dataDir", "NUL"), config=set_ipam(dataDir=lambda w: str(w.state) + "/x\0y")))


# -- 6. GC's valid attachments that are no list of attachments (code 7), nothing removed.
# old: read as "nothing is valid": bridge removed every ipMasq chain of the network and bandwidth
# every IFB before host-local's schema refused the list; loopback answered success. The host-local
# rows guard the list check that now runs for every plugin before any removes anything (seeded:
# a reservation, for bridge a real ipMasq attachment, for bandwidth a tagged IFB).
BAD_ATTACHMENTS: dict[str, Any] = {
    "object": {"containerID": "x", "ifname": "eth0"},
    "string": "abc",
    "number": 5,
    "true": True,
    "strings": ["abc"],
    "numbers": [1, 2],
    "null-entry": [None],
    "no-containerid": [{"ifname": "eth0"}],
    "no-ifname": [{"containerID": "abc"}],
    "containerid-number": [{"containerID": 7, "ifname": "eth0"}],
    "ifname-list": [{"containerID": "abc", "ifname": ["eth0"]}],
    "empty-containerid": [{"containerID": "", "ifname": "eth0"}],
}


def seed_reservation(w: World) -> None:
    """A reservation of another attachment, as host-local writes it."""
    w.network_dir.mkdir(parents=True, exist_ok=True)
    address = w.subnet.rsplit(".", 1)[0] + ".9"
    (w.network_dir / address).write_bytes(b"live-container\r\neth0")


for _plugin in PLUGINS:
    for _name, _value in BAD_ATTACHMENTS.items():
        legacy = ("cni.dev/attachments",) if _name in ("object", "strings") else ()
        for _key in ("cni.dev/valid-attachments", *legacy):
            suffix = "" if _key == "cni.dev/valid-attachments" else "-legacy-key"
            rows(Case(f"gc-{_name}{suffix}-{_plugin}", _plugin, "GC", 7, (_key,),
                      config=set_top(**{_key: _value}), seed=f"gc-{_plugin}"))


# -- 7. Names the kernel expands: '%' in CNI_IFNAME (code 4) and in the bridge name (code 7).
# old: bridge ADD made `eth0`/`x0` instead and then could not find it (a leaked link per retry);
# host-local and loopback took the name as it was.
for _ifname in ("eth%d", "%d", "x%s"):
    for _plugin in PLUGINS:
        rows(Case(f"ifname-{_ifname.replace('%', 'pct')}-{_plugin}-add", _plugin, "ADD", 4,
                  ("CNI_IFNAME", "%"), env=lambda w, _n=_ifname: {"CNI_IFNAME": _n}))
    rows(Case(f"ifname-{_ifname.replace('%', 'pct')}-bridge-check", "bridge", "CHECK", 4, ("CNI_IFNAME",),
              env=lambda w, _n=_ifname: {"CNI_IFNAME": _n}))
for _name in ("br%d", "%d", "x%%"):
    for _command in ("ADD", "CHECK"):
        rows(Case(f"bridge-{_name.replace('%', 'pct')}-{_command.lower()}", "bridge", _command, 7,
                  ("bridge", "%"), config=set_top(bridge=_name)))

# -- 8. Bytes that are not UTF-8 in CNI_IFNAME (code 4 on ADD and CHECK), and bridge names the
# kernel would cut or refuse (code 7). old: ADD crashed with 999 on encoding the name (bridge), took
# it as it was (host-local, loopback, bandwidth); a bridge name of 15 characters but more bytes
# reached the kernel.
for _raw in (b"eth\xff", b"\xc3(", b"e\xed\xa0\x80"):
    for _plugin in PLUGINS:
        for _command in ("ADD", "CHECK"):
            rows(Case(f"ifname-bytes-{_raw.hex()}-{_plugin}-{_command.lower()}", _plugin, _command, 4,
                      ("CNI_IFNAME", "UTF-8"),
                      env=lambda w, _r=_raw: {"CNI_IFNAME": os.fsdecode(_r)}))
for _label, _name in (("surrogate", "br\udcff"), ("high-surrogate", "br\ud800"), ("nul", "br\u0000x"),
                      ("multibyte-16", "é" * 8)):
    rows(Case(f"bridge-name-{_label}-add", "bridge", "ADD", 7, ("bridge",), config=set_top(bridge=_name)))

# -- 9. Route values wider than their netlink fields (code 7 in the IPAM config, 6 in a result).
# old: host-local handed them out, bridge crashed with struct.error (999) after making the veth.
WIDE = {"mtu": 1 << 32, "advmss": 1 << 32, "priority": 1 << 32, "table": 1 << 32, "scope": 256}
NEGATIVE = {"table": -1, "scope": -1, "mtu": -1}
for _label, _values in (("wide", WIDE), ("negative", NEGATIVE)):
    for _key, _value in _values.items():
        for _plugin in ("host-local", "bridge"):
            rows(Case(f"route-{_key}-{_label}-{_plugin}-add", _plugin, "ADD", 7, (_key,),
                      config=set_ipam(routes=[{"dst": "10.99.0.0/16", _key: _value}])))
for _key, _value in WIDE.items():
    def _prev_route(config: dict, w: World, _key=_key, _value=_value) -> None:
        config["prevResult"]["routes"] = [{"dst": "10.99.0.0/16", _key: _value}]
    rows(Case(f"prev-route-{_key}-wide-bandwidth-add", "bandwidth", "ADD", 6, ("prevResult", _key),
              config=_prev_route))
    rows(Case(f"prev-route-{_key}-wide-bridge-check", "bridge", "CHECK", 6, ("prevResult", _key),
              config=_prev_route))


# -- 9b. A rangeStart on the IPv4 broadcast address, whose default rangeEnd lies before it (code 7).
# old: the allocator walked the empty range for ever (found by tests/properties/test_allocator.py).
def _start_at_broadcast(config: dict, w: World) -> None:
    config["ipam"]["rangeStart"] = w.subnet.rsplit(".", 1)[0] + ".255"


for _plugin, _command in (("host-local", "ADD"), ("host-local", "CHECK"), ("host-local", "STATUS"),
                          ("bridge", "ADD")):
    rows(Case(f"range-start-broadcast-{_plugin}-{_command.lower()}", _plugin, _command, 7, ("RangeStart",),
              config=_start_at_broadcast))


# -- 10. JSON nested deeper than any config (code 6), on every plugin and verb.
# old: 100000 levels raised RecursionError (999 with a traceback); 70 levels under an unknown key
# were accepted.
def _deep(depth: int) -> Callable[[World], bytes]:
    def stdin(w: World) -> bytes:
        return (b'{"cniVersion": "1.0.0", "name": "%s", "type": "x", "deep": ' % w.network.encode()
                + b"[" * depth + b"]" * depth + b"}")
    return stdin


for _depth in (70, 100000):
    for _plugin in PLUGINS:
        for _command in ("ADD", "DEL", "CHECK"):
            rows(Case(f"deep-{_depth}-{_plugin}-{_command.lower()}", _plugin, _command, 6, ("nested",),
                      stdin=_deep(_depth)))


# -- 11. Waiting on others: a foreign IPAM plugin and nft that never answer (code 11 after the
# bound, which the row sets to 1 s; the message names what was waited for).
# old: both waited for ever.
def _fake(name: str, body: str) -> Callable[[World], None]:
    def plant(w: World) -> None:
        path = w.tools / name
        path.write_text("#!/bin/sh\n" + body + "\n")
        path.chmod(0o755)
    return plant


def _slow_ipam_env(w: World) -> dict:
    return {"CNI_PATH": f"{w.tools}:{os.environ.get('PYCNI_BIN', '')}", "PYCNI_DELEGATE_TIMEOUT": "1"}


for _command in ("ADD", "DEL"):
    rows(Case(f"slow-ipam-bridge-{_command.lower()}", "bridge", _command, 11, ("slowipam", "within 1 s"),
              config=set_ipam(type="slowipam"), env=_slow_ipam_env, plant=_fake("slowipam", "sleep 60")))


def _slow_nft_env(w: World) -> dict:
    return {"PATH": f"{w.tools}:/usr/sbin:/usr/bin:/sbin:/bin", "PYCNI_NFT_TIMEOUT": "1"}


for _command in ("ADD", "DEL"):
    rows(Case(f"slow-nft-bridge-{_command.lower()}", "bridge", _command, 11, ("nft", "within 1 s"),
              config=set_top(ipMasq=True, ipMasqBackend="nftables"), env=_slow_nft_env,
              plant=_fake("nft", "sleep 60")))


# -- 12. CNI_NETNS on DEL that is no namespace: not an error (nothing to do there), but answered at
# once and with the address released. These rows expect success (code 0, no output).
# old: a FIFO blocked DEL for ever, so the address was never released; /dev/tty failed it with 999;
# the other kinds guard the same open.
QUIET_DEL_KINDS = ("fifo", "fifo-link", "device", "dev-zero", "directory", "uts-ns", "tty")


@dataclass
class Quiet:
    """A call that must succeed quickly, print nothing and leave the host as it was."""

    id: str
    plugin: str
    command: str
    env: Callable[[World], dict] | None = None
    plant: Callable[[World], None] | None = None
    version: str = "1.0.0"
    extra: dict = field(default_factory=dict)


QUIET: list[Quiet] = []
for _plugin in NETNS_PLUGINS:
    for _kind in QUIET_DEL_KINDS:
        _plant, _path = planted(_kind, "netns")
        QUIET.append(Quiet(f"del-netns-{_kind}-{_plugin}", _plugin, "DEL", env=env_netns(_path),
                           plant=_plant))
