"""The measurements. Ours and the reference run interleaved on identical configs.

Interleaving (pod i of ours, then pod i of the reference, the order flipping every iteration) makes
both sides see the same machine: noise from other work on the host lands on both, not on whichever
side happened to run while it lasted.
"""

from __future__ import annotations

import json
import math
import os
import re
import secrets
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cni.layout.bandwidth import ifb_name
from cni.ops.libcni import NetList, RuntimeConf, make_list

from . import spawn
from .chain import ChainRun, Driver
from .host import Host
from .warmserve import WARM_ENV

SIDES = ("ours", "ref")  # our plugins on the cold path (a process per call), the reference
WARM = "warm"  # our plugins handed to a warm process (`pycni serve`)
LABELS = {"ours": "ours", WARM: "ours warm", "ref": "reference"}
TYPES = ("loopback", "bridge", "ptp", "host-local", "bandwidth", "portmap")
LOOPBACK = "loopback"
BRIDGE = "bridge+host-local"
SHAPED = "bridge+host-local+bandwidth"
HOSTPORT = "bridge+host-local+portmap"
EXAMPLE = "loopback+bridge+host-local+bandwidth+portmap"  # conf/examples' whole list
KIND = "loopback+ptp+host-local+portmap"  # kind's default network, as kindnetd writes it
# The chains of the latency and memory phases, in order. A chain is its plugin types joined by "+";
# an IPAM type (host-local) follows the plugin that delegates to it. Adding a chain is a line here
# (and, for a new plugin type, its config in ``PLUGIN_CONFS`` and its name in ``TYPES``).
CHAINS = (LOOPBACK, BRIDGE, SHAPED, HOSTPORT, EXAMPLE, KIND)
IPAM_TYPES = frozenset({"host-local"})
# The list's cniVersion when the sides' VERSION answers cannot say (see ``Bench.cni_version``).
CNI_VERSION = "1.0.0"
KIND_VERSION = "0.3.1"  # kindnetd's list; a runtime sends no CHECK before 0.4.0
# What containerd's CRI passes for the kubernetes.io/{ingress,egress}-bandwidth annotations
# 1M and 2M: rates in bit/s, bursts of MaxUint32.
BANDWIDTH_CAP = {"ingressRate": 1_000_000, "ingressBurst": 4294967295,
                 "egressRate": 2_000_000, "egressBurst": 4294967295}
# What containerd's go-cni passes for a pod's hostPorts (capitalised keys: no JSON tags).
PORTMAP_CAP = [{"HostPort": 18080, "ContainerPort": 80, "Protocol": "tcp", "HostIP": ""},
               {"HostPort": 18053, "ContainerPort": 53, "Protocol": "udp", "HostIP": ""}]
MAX_ERRORS = 20
FLOOR_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def order(i: int, sides: tuple[str, ...] = SIDES) -> tuple[str, ...]:
    """The sides in turn: each one goes first as often as the others."""
    k = i % len(sides)
    return sides[k:] + sides[:k]


def snapshot(src: str, dst: Path) -> str:
    """Copy the plugin executables of ``src`` (and a bundle they link to) into ``dst``/bin.

    Both sides then run from the same filesystem, and a rebuild of dist/ during the run cannot swap
    the executables under the bench. Symlinks into a bundle stay symlinks, so a multi-call bundle
    still sees its plugin name in argv[0] and finds its libraries beside the link's target.
    """
    bin_dir = dst / "bin"
    bin_dir.mkdir(parents=True)
    copied: dict[str, Path] = {}
    src_real = os.path.realpath(src)
    for t in (*TYPES, "pycni"):  # pycni: the bundle's own name, which `pycni serve` runs as
        p = os.path.join(src, t)
        if not os.path.exists(p):
            continue
        real = os.path.realpath(p)
        bundle = os.path.dirname(real)
        if os.path.islink(p) and bundle != src_real:
            if bundle not in copied:
                target = dst / f"bundle{len(copied)}" / os.path.basename(bundle)
                shutil.copytree(bundle, target, symlinks=True)
                copied[bundle] = target
            os.symlink(copied[bundle] / os.path.basename(real), bin_dir / t)
        else:
            shutil.copy2(real, bin_dir / t)
    return str(bin_dir)


@dataclass
class Recorder:
    """Failures and errors, gathered from every chain the bench runs."""

    sides: tuple[str, ...] = SIDES
    failures: dict[str, dict[str, int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        for s in self.sides:
            self.failures.setdefault(s, {})
            self.calls.setdefault(s, 0)

    def note(self, side: str, where: str, run: ChainRun) -> None:
        with self.lock:
            self.calls[side] += len(run.calls)
            if not run.ok:
                key = f"{where} {run.verb}"
                self.failures[side][key] = self.failures[side].get(key, 0) + 1
                if len(self.errors) < MAX_ERRORS:
                    self.errors.append(f"{side} {key}: {run.error}")

    def total_failures(self, side: str | None = None) -> int:
        sides = self.sides if side is None else (side,)
        return sum(sum(self.failures[s].values()) for s in sides)


class Bench:
    """One run: the drivers of each side, the host registry, and the results as plain data.

    The sides are ``ours`` (the cold path) and ``ref``; ``add_warm(socket)`` adds ``warm``: our
    same executables, whose calls go to the warm process listening on ``socket``. Our cold side
    then runs with ``PYCNI_WARM_SOCKET=off``, so no warm process on the host can serve it.
    """

    def __init__(self, host: Host, ours: str, ref: str, *, use_snapshot: bool = True,
                 timeout: float = spawn.DEFAULT_TIMEOUT):
        self.host = host
        self.sides: tuple[str, ...] = SIDES
        self.source = {"ours": os.path.abspath(ours), "ref": os.path.abspath(ref)}
        dirs = dict(self.source)
        if use_snapshot:
            dirs = {s: snapshot(d, host.directory(f"plugins-{s}")) for s, d in self.source.items()}
        # ours is the cold path: no warm process of the host may serve it (add_warm adds that side)
        self.drivers = {s: Driver(d, timeout=timeout, env={WARM_ENV: "off"} if s == "ours" else None)
                        for s, d in dirs.items()}
        self.rec = Recorder()
        self.versions = {s: self._probe(s) for s in SIDES}
        self.available = {s: {t: bool(v) for t, v in found.items()} for s, found in self.versions.items()}
        self.cni_version = newest_common(self.versions)
        self.about = {s: about(self.drivers[s].bin_dir, self.source[s]) for s in SIDES}
        self.results: dict[str, Any] = {}

    def add_warm(self, socket: str) -> None:
        """Measure the warm path too, beside the cold one (interleaved with both other sides)."""
        ours = self.drivers["ours"]
        self.drivers[WARM] = Driver(ours.bin_dir, ours.timeout, env={WARM_ENV: socket})
        self.sides = ("ours", WARM, "ref")
        self.rec = Recorder(self.sides)
        self.source[WARM] = self.source["ours"]
        self.versions[WARM] = self.versions["ours"]
        self.available[WARM] = self.available["ours"]
        self.about[WARM] = self.about["ours"]

    def order(self, i: int) -> tuple[str, ...]:
        return order(i, self.sides)

    def _probe(self, side: str) -> dict[str, frozenset[str]]:
        """The spec versions each plugin type of a side answers VERSION with (empty: cannot serve it)."""
        found: dict[str, frozenset[str]] = {}
        for t in TYPES:
            path = os.path.join(self.drivers[side].bin_dir, t)
            if not os.access(path, os.X_OK):
                found[t] = frozenset()
                continue
            ex = self.drivers[side].version(t)
            try:
                versions = json.loads(ex.stdout)["supportedVersions"] if ex.rc == 0 else []
            except (ValueError, KeyError, TypeError):
                versions = []
            found[t] = frozenset(v for v in versions if isinstance(v, str))
        return found

    def usable(self, side: str, chain: str) -> bool:
        return all(self.available[side][t] for t in chain_types(chain))

    # ------------------------------------------------------------------ building blocks
    def netlist(self, chain: str, side: str) -> NetList:
        """A fresh list: a main plugin with IPAM gets its own bridge, /24 and host-local dataDir."""
        name = f"pcbench-{side}-{secrets.token_hex(4)}"
        plugins = tuple(PLUGIN_CONFS[t](self, side) for t in chain_types(chain) if t not in IPAM_TYPES)
        version = KIND_VERSION if chain == KIND else self.cni_version
        return make_list(name, version, list(plugins))

    def ipam(self, side: str) -> dict[str, Any]:
        """host-local over a /24 of its own, the first address the gateway."""
        subnet = self.host.subnet()
        return {"type": "host-local", "subnet": str(subnet), "gateway": str(next(subnet.hosts())),
                "routes": [{"dst": "0.0.0.0/0"}], "dataDir": str(self.host.directory(f"ipam-{side}"))}

    def pod(self, netlist: NetList, netns: str, index: int) -> RuntimeConf:
        """A pod as containerd's CRI describes it to CNI (64-hex sandbox id, K8S_POD_* args)."""
        cid = secrets.token_hex(32)
        args = (f"IgnoreUnknown=1;K8S_POD_NAMESPACE=bench;K8S_POD_NAME=pod-{index};"
                f"K8S_POD_INFRA_CONTAINER_ID={cid};K8S_POD_UID={uuid.uuid4()}")
        caps: dict[str, Any] = {}
        if "bandwidth" in netlist.types:
            caps["bandwidth"] = dict(BANDWIDTH_CAP)
            self.host.register_link(ifb_name(netlist.name, cid))
        if "portmap" in netlist.types:
            caps["portMappings"] = [dict(m) for m in PORTMAP_CAP]
        return RuntimeConf(cid, netns, "eth0", args, caps)

    # ------------------------------------------------------------------ scenarios
    def latency(self, iterations: int, warmup: int, floors: dict[str, list[str]]) -> None:
        """ADD, CHECK, DEL of one pod after another, per chain; the floor programs in between.

        Each side reuses one namespace per chain: every cycle leaves it as it found it, and creating
        and destroying a namespace per pod would add the kernel's asynchronous namespace teardown
        to the noise of the very calls being measured.
        """
        chains = [c for c in CHAINS if self.usable("ref", c) or self.usable("ours", c)]
        lists = {(c, s): self.netlist(c, s) for c in chains for s in self.sides}
        ns = dict(zip(lists, self.host.add_netns(len(lists)), strict=True))
        samples: dict[str, Any] = {c: {s: {"ADD": [], "CHECK": [], "DEL": []} for s in self.sides}
                                   for c in chains}
        per_plugin: dict[str, Any] = {c: {s: {} for s in self.sides} for c in chains}
        floor_samples: dict[str, list[float]] = {k: [] for k in floors}
        log(f"latency: {iterations} pod cycles per chain and side ({warmup} warm-up), chains {chains}")
        last = time.monotonic()
        for i in range(-warmup, iterations):
            keep = i >= 0
            for chain in chains:
                for side in self.order(i):
                    if not self.usable(side, chain):
                        continue
                    netlist = lists[chain, side]
                    runs = self.cycle(side, netlist, self.pod(netlist, ns[chain, side], i), chain)
                    if keep:
                        for run in runs:
                            if run.ok:
                                samples[chain][side][run.verb].append(run.seconds)
                                for call in run.calls:
                                    per_plugin[chain][side].setdefault(f"{run.verb} {call.plugin}", []) \
                                        .append(call.seconds)
            for label, argv in floors.items():
                ex = spawn.run(argv[0], FLOOR_ENV, b"{}", argv=argv)
                if keep and ex.rc == 0:
                    floor_samples[label].append(ex.seconds)
            if time.monotonic() - last > 15:
                last = time.monotonic()
                log(f"latency: {i + 1}/{iterations}")
        self.host.del_netns(list(ns.values()))
        self.results["latency"] = samples
        self.results["per_plugin"] = per_plugin
        self.results["floor"] = {"samples": floor_samples}

    def memory(self, cycles: int, floors: dict[str, list[str]]) -> None:
        """Peak RSS of each plugin process, over ``cycles`` pod cycles of every chain, and of the floors.

        A separate phase, because the figure has to be taken through a small helper (see
        ``spawn.peak_rss_helper``) that must not sit inside the timed calls.
        """
        helper = spawn.peak_rss_helper()
        how = (f"GNU time ({helper})" if helper else
               "wait4 of the bench's own child: an upper bound, it includes the bench's RSS at spawn")
        log(f"memory: {cycles} pod cycles per chain and side, peak RSS via {how}")
        drivers = {s: Driver(d.bin_dir, d.timeout, rss_helper=helper, env=d.extra_env)
                   for s, d in self.drivers.items()}
        chains = [c for c in CHAINS if self.usable("ref", c) or self.usable("ours", c)]
        lists = {(c, s): self.netlist(c, s) for c in chains for s in self.sides}
        ns = dict(zip(lists, self.host.add_netns(len(lists)), strict=True))
        peaks: dict[str, dict[str, int]] = {s: {} for s in self.sides}
        for i in range(cycles):
            for chain in chains:
                for side in self.order(i):
                    if not self.usable(side, chain):
                        continue
                    netlist = lists[chain, side]
                    pod = self.pod(netlist, ns[chain, side], i)
                    for run in self.cycle(side, netlist, pod, f"memory {chain}", drivers[side]):
                        for c in run.calls:
                            peaks[side][c.plugin] = max(peaks[side].get(c.plugin, 0), c.maxrss_kib)
        floor_peaks: dict[str, int] = {}
        for label, argv in floors.items():
            for _ in range(max(1, cycles)):
                ex = spawn.run(argv[0], FLOOR_ENV, b"{}", argv=argv, rss_helper=helper)
                floor_peaks[label] = max(floor_peaks.get(label, 0), ex.maxrss_kib)
        self.host.del_netns(list(ns.values()))
        self.results["memory"] = {"method": how, "exact": helper is not None, "peak_kib": peaks,
                                  "floor_peak_kib": floor_peaks}

    def cycle(self, side: str, netlist: NetList, pod: RuntimeConf, where: str,
              driver: Driver | None = None) -> list[ChainRun]:
        """ADD, CHECK, DEL of one pod; after a failed ADD only the DEL a runtime would send."""
        driver = driver or self.drivers[side]
        add = driver.add(netlist, pod)
        self.rec.note(side, where, add)
        runs = [add]
        if add.ok and netlist.version >= "0.4.0":  # a runtime sends no CHECK before 0.4.0
            check = driver.check(netlist, pod, add.result)
            self.rec.note(side, where, check)
            runs.append(check)
        delete = driver.delete(netlist, pod, add.result)
        self.rec.note(side, where, delete)
        runs.append(delete)
        return runs

    def concurrency(self, levels: list[int], samples_per_level: int) -> None:
        """``level`` pods ADDed at once, then DELed at once; the total and each pod's latency."""
        chain = BRIDGE
        sides = [s for s in self.sides if self.usable(s, chain)]
        if not sides or not levels:
            return
        lists = {s: self.netlist(chain, s) for s in sides}
        pools = {s: self.host.add_netns(max(levels)) for s in sides}
        for s in sides:  # the first ADD creates the bridge: keep that out of the figures
            pod = self.pod(lists[s], pools[s][0], 0)
            self.cycle(s, lists[s], pod, "warm-up")
        out: dict[str, Any] = {}
        for level in levels:
            rounds = max(1, math.ceil(samples_per_level / level))
            log(f"concurrency: {level} pods at once, {rounds} rounds")
            res = {s: {v: {"totals": [], "latencies": [], "failures": 0} for v in ("ADD", "DEL")}
                   for s in sides}
            for r in range(rounds):
                for side in self.order(r):
                    if side not in sides:
                        continue
                    driver, netlist = self.drivers[side], lists[side]
                    pods = [self.pod(netlist, pools[side][k], k) for k in range(level)]
                    where = f"{level} at once"
                    adds, total = parallel(level, adding(driver, netlist, pods))
                    self._gather(res[side]["ADD"], side, where, adds, total)
                    dels, total = parallel(level, deleting(driver, netlist, pods, adds))
                    self._gather(res[side]["DEL"], side, where, dels, total)
            out[str(level)] = res
        for s in sides:
            self.host.del_netns(pools[s])
        self.results["concurrency"] = {"chain": chain, "levels": out}

    def _gather(self, into: dict[str, Any], side: str, where: str, runs: list[ChainRun],
                total: float) -> None:
        into["totals"].append(total)
        for run in runs:
            self.rec.note(side, where, run)
            if run.ok:
                into["latencies"].append(run.seconds)
            else:
                into["failures"] += 1

    def fill(self, pods: int, floor: list[str] | None = None) -> None:
        """Fill a /24 one pod at a time, then empty it: the cost of pod i must not grow with i.

        ``floor`` (the empty bundle) runs once per pod index too: the machine's own drift over the
        run, which a shared machine has, shows there and not as a slope of the plugins.
        """
        chain = BRIDGE
        sides = [s for s in self.sides if self.usable(s, chain)]
        if not sides or pods <= 0:
            return
        log(f"fill: {pods} pods into one /24 per side, then out again")
        lists = {s: self.netlist(chain, s) for s in sides}
        paths = {s: self.host.add_netns(pods) for s in sides}
        res: dict[str, Any] = {s: {"ADD": [None] * pods, "DEL": [None] * pods} for s in sides}
        drift: dict[str, list[float | None]] = {"ADD": [None] * pods, "DEL": [None] * pods}

        def tick(verb: str, i: int) -> None:
            if floor:
                ex = spawn.run(floor[0], FLOOR_ENV, b"{}", argv=floor)
                drift[verb][i] = ex.seconds if ex.rc == 0 else None

        added: dict[str, list[tuple[RuntimeConf, ChainRun]]] = {s: [] for s in sides}
        for i in range(pods):
            for side in self.order(i):
                if side not in sides:
                    continue
                pod = self.pod(lists[side], paths[side][i], i)
                run = self.drivers[side].add(lists[side], pod)
                self.rec.note(side, "fill", run)
                added[side].append((pod, run))
                if run.ok:
                    res[side]["ADD"][i] = run.seconds
            tick("ADD", i)
        for i in range(pods):
            for side in self.order(i):
                if side not in sides:
                    continue
                pod, add = added[side][i]
                run = self.drivers[side].delete(lists[side], pod, add.result)
                self.rec.note(side, "empty", run)
                if run.ok:
                    res[side]["DEL"][i] = run.seconds
            tick("DEL", i)
        for s in sides:
            self.host.del_netns(paths[s])
        self.results["fill"] = {"chain": chain, "pods": pods, "sides": res, "floor": drift}


def chain_types(chain: str) -> tuple[str, ...]:
    return tuple(chain.split("+"))


def _bridge(bench: Bench, side: str) -> dict[str, Any]:
    return {"type": "bridge", "bridge": bench.host.bridge_name(), "mtu": 1500, "isGateway": True,
            "ipMasq": False, "hairpinMode": False, "ipam": bench.ipam(side)}


def _ptp(bench: Bench, side: str) -> dict[str, Any]:
    """kindnetd's ptp: no masquerade, the node's MTU, host-local with one range and a default route."""
    ipam = bench.ipam(side)
    return {"type": "ptp", "ipMasq": False, "mtu": 1500,
            "ipam": {"type": "host-local", "dataDir": ipam["dataDir"], "routes": ipam["routes"],
                     "ranges": [[{"subnet": ipam["subnet"]}]]}}


# The config of each plugin type in a chain (IPAM types come inside the plugin that delegates).
PLUGIN_CONFS: dict[str, Callable[[Bench, str], dict[str, Any]]] = {
    "loopback": lambda bench, side: {"type": "loopback"},
    "bridge": _bridge,
    "ptp": _ptp,
    "bandwidth": lambda bench, side: {"type": "bandwidth", "capabilities": {"bandwidth": True}},
    "portmap": lambda bench, side: {"type": "portmap", "capabilities": {"portMappings": True}},
}


def newest_common(versions: dict[str, dict[str, frozenset[str]]]) -> str:
    """The newest spec version every plugin of every side speaks (``CNI_VERSION`` when none)."""
    sets = [v for found in versions.values() for v in found.values() if v]
    common = frozenset.intersection(*sets) if sets else frozenset()
    parsed = []
    for v in common:
        try:
            parsed.append((tuple(int(x) for x in v.split(".")), v))
        except ValueError:
            continue
    return max(parsed)[1] if parsed else CNI_VERSION


def about(bin_dir: str, source: str) -> str:
    """What a plugin directory is, in its own words: the first line a plugin prints with no command.

    The Go plugins say ``CNI bridge plugin v1.9.1``, reported as ``CNI plugins v1.9.1``; Debian's are
    built without a version (``version unknown``), so the package that owns them is added.
    """
    for t in TYPES:
        path = os.path.join(bin_dir, t)
        if not os.access(path, os.X_OK):
            continue
        ex = spawn.run(path, FLOOR_ENV)
        text = (ex.stdout or ex.stderr).decode(errors="replace").strip()
        line = text.splitlines()[0] if text else f"{t}: no answer"
        line = re.sub(r"^CNI \S+ plugin\b", "CNI plugins", line)
        if "version unknown" in line:
            line += _dpkg_owner(os.path.realpath(os.path.join(source, t)))
        return line
    return "no plugin"


def _dpkg_owner(path: str) -> str:
    """", Debian package <name> <version>" when dpkg owns ``path``, else ""."""
    try:
        owner = subprocess.run(["dpkg-query", "-S", path], capture_output=True, text=True, timeout=10)
        pkg = owner.stdout.split(":", 1)[0].strip() if owner.returncode == 0 else ""
        if not pkg:
            return ""
        ver = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True,
                             timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return f" (Debian package {pkg} {ver})"


def adding(driver: Driver, netlist: NetList, pods: list[RuntimeConf]) -> Callable[[int], ChainRun]:
    """For `parallel`: ADD of pod k."""
    return lambda k: driver.add(netlist, pods[k])


def deleting(driver: Driver, netlist: NetList, pods: list[RuntimeConf],
             adds: list[ChainRun]) -> Callable[[int], ChainRun]:
    """For `parallel`: DEL of pod k, with the result its ADD printed."""
    return lambda k: driver.delete(netlist, pods[k], adds[k].result)


def parallel(n: int, fn: Callable[[int], ChainRun]) -> tuple[list[ChainRun], float]:
    """Run ``fn(0..n-1)`` on ``n`` threads released together; the results and the wall time."""
    results: list[ChainRun | None] = [None] * n
    barrier = threading.Barrier(n + 1)

    def worker(k: int) -> None:
        barrier.wait()
        try:
            results[k] = fn(k)
        except Exception as exc:  # a driver error is a failed pod, not a crashed bench
            results[k] = ChainRun("?", False, [], error=f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(n)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    total = time.perf_counter() - t0
    return [r if r is not None else ChainRun("?", False, [], error="no result") for r in results], total
