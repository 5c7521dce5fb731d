"""``sudo python3 -m bench soak``: the example chain under random SIGKILLs, ours and the reference's.

Each side has a private node (a network namespace holding its bridge, veths, IFBs and firewall
rules), its own /24, dataDir and libcni result cache, and ``slots`` x ``pods`` pod namespaces.
The chain is the project's example list (conf/examples/*.conflist) with ipMasq on, at cniVersion
1.1.0, run through libcni 1.3.0 (``cnidrive`` from ../shared/realnode, the libcni containerd 2.x
vendors) with containerd's arguments. A share of the ADDs and DELs is SIGKILLed (the driver and the
plugin it is running, with their children) at a random moment; the runtime's rules follow: a failed
or killed ADD is followed by DEL, a failed or killed DEL is retried.

The sides take turns, wave by wave. After every wave (no call running) STATUS runs, as containerd
2.x runs it whenever the kubelet asks, and must succeed; every ``--gc-every`` waves GC runs with the
live pods as the valid attachments (libcni DELs the cached attachments of the others, then sends
GC to each plugin). Then the invariants are read: no address held by two live pods, every
reservation owned by a live pod and every live pod's address reserved for it. After the final DEL
of every pod nothing may be left: reservations, cached results, links other than the bridge in the
node, links other than lo in the pods, iptables chains and rules, nft rules of any pod. A GC with
no valid attachment follows, and what is left after it is counted apart.
With ``--warm`` our side's calls go through a warm process (`pycni serve`, started inside our
node's namespace): a killed call is then a killed launcher, whose child and tools must die with it.
Exit status: 0, 1 when on our side an invariant broke, something was left or an unkilled call
failed (the reference's figures are reported, not judged), 2 on a usage or set-up error, 130 when
interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import realnode, soakcheck
from .host import Host
from .scenarios import BANDWIDTH_CAP, log, snapshot
from .warmserve import WARM_ENV, WarmServer

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "conf" / "examples"
CALL_TIMEOUT = 120.0
DEL_RETRIES = 20
# The first version libcni sends STATUS and GC to.
SOAK_CNI_VERSION = "1.1.0"
SIDES = ("ours", "ref")
# Process groups of the cnidrive runs in flight, killed when the soak is interrupted.
_running: set[int] = set()
_running_lock = threading.Lock()


@dataclass
class Stats:
    """What one side did: operations (cnidrive runs), kills, failures of calls nobody killed."""

    ops: dict[str, int] = field(default_factory=lambda: {"ADD": 0, "DEL": 0, "STATUS": 0, "GC": 0})
    kills: dict[str, int] = field(default_factory=lambda: {"ADD": 0, "DEL": 0})
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    durations: dict[str, list[float]] = field(default_factory=lambda: {"ADD": [], "DEL": []})
    duplicates: list[str] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)
    after_gc: list[str] = field(default_factory=list)
    waves: int = 0
    most_live: int = 0

    @property
    def total(self) -> int:
        """ADDs and DELs: what ``--operations`` counts (STATUS and GC come on top)."""
        return self.ops["ADD"] + self.ops["DEL"]

    def summary(self) -> dict[str, Any]:
        return {"operations": self.total, "ops": self.ops, "kills": self.kills,
                "unkilled_failures": len(self.failures), "failures": self.failures[:20],
                "seconds": round(self.seconds, 1), "duplicates": len(self.duplicates),
                "duplicate_samples": self.duplicates[:20], "wave_faults": len(self.faults),
                "wave_fault_samples": self.faults[:20], "leftovers": self.leftovers,
                "after_gc": self.after_gc, "waves": self.waves, "most_live_pods": self.most_live,
                "median_ms": {v: _median_ms(d) for v, d in self.durations.items()}}


def _median_ms(values: list[float]) -> float | None:
    if not values:
        return None
    s = sorted(values)
    return round(s[len(s) // 2] * 1000, 1)


@dataclass
class Pod:
    container_id: str
    netns: str
    index: int
    ips: list[str] = field(default_factory=list)


class Side:
    """One implementation's node: its namespaces, files, list, and the pods alive on it."""

    def __init__(self, name: str, bin_dir: str, host: Host, plugins: list[dict[str, Any]], slots: int,
                 pods: int, cnidrive: str, kill_share: float, rng: random.Random) -> None:
        self.name = name
        self.bin_dir = bin_dir
        self.host = host
        self.cnidrive = cnidrive
        self.kill_share = kill_share
        self.rng = rng
        self.rng_lock = threading.Lock()
        self.root = host.directory(f"soak-{name}")
        self.network = f"soak-{host.run_id}-{name}"
        self.node = host.add_netns(1)[0]
        self.bridge = host.name(f"pcs{host.run_id}", 4)
        subnet = host.subnet()
        hosts = list(subnet.hosts())
        self.data_dir = self.root / "ipam"
        self.cache_dir = self.root / "cache"
        self.conf_dir = self.root / "net.d"
        self.conf_dir.mkdir()
        chain = soakcheck.soak_plugins(plugins, self.bridge, str(subnet), str(hosts[0]), str(self.data_dir))
        netlist = {"cniVersion": SOAK_CNI_VERSION, "name": self.network, "plugins": chain}
        (self.conf_dir / f"10-{self.network}.conflist").write_text(json.dumps(netlist, indent=1))
        self.types = [p["type"] for p in chain]
        self.slots = [host.add_netns(pods) for _ in range(slots)]
        self.live: dict[str, Pod] = {}
        self.ids: set[str] = set()
        self.stats = Stats()
        self.typical = {"ADD": 0.1, "DEL": 0.1}
        self.lock = threading.Lock()
        self.warm: WarmServer | None = None

    def start_warm(self) -> None:
        """Our calls through a warm process in the node (it serves callers of its namespace only)."""
        bundle = Path(os.path.realpath(os.path.join(self.bin_dir, "loopback"))).parent  # its `pycni`
        self.warm = WarmServer(bundle, self.root / "warm", netns=self.node)

    # ------------------------------------------------------------------ one call
    def env(self, pod: Pod) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CNI_") and k not in ("CAP_ARGS",)}
        caps: dict[str, Any] = {}
        if "bandwidth" in self.types:
            caps["bandwidth"] = dict(BANDWIDTH_CAP)
        if "portmap" in self.types:
            caps["portMappings"] = [{"hostPort": 20000 + pod.index, "containerPort": 80, "protocol": "tcp"}]
        env.update(CNI_PATH=self.bin_dir, NETCONFPATH=str(self.conf_dir), CNI_CACHE_DIR=str(self.cache_dir),
                   CNI_IFNAME="eth0", CNI_CONTAINERID=pod.container_id, CAP_ARGS=json.dumps(caps),
                   CNI_ARGS=(f"IgnoreUnknown=1;K8S_POD_NAMESPACE=soak;K8S_POD_NAME=pod-{pod.index};"
                             f"K8S_POD_INFRA_CONTAINER_ID={pod.container_id};K8S_POD_UID={uuid.uuid4()}"))
        env.update(self.warm.env if self.warm else {WARM_ENV: "off"})
        return env

    def call(self, verb: str, pod: Pod, arg: str | None = None) -> tuple[str, dict[str, Any] | None]:
        """One cnidrive run in the node: "ok", "killed" or "failed", and the ADD result.

        ``arg`` replaces the pod's namespace as cnidrive's last argument (GC: the valid attachments).
        STATUS and GC are never killed: the soak kills the calls a pod's life is made of.
        """
        with self.rng_lock:
            kill = verb in self.typical and self.rng.random() < self.kill_share
            delay = self.rng.uniform(0.0, 1.2 * self.typical[verb]) if kill else 0.0
        last = pod.netns if arg is None else arg
        argv = ["nsenter", f"--net={self.node}", "--", self.cnidrive, verb.lower(), self.network, last]
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, env=self.env(pod), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True)
        with _running_lock:
            _running.add(proc.pid)
        killed = False
        try:
            proc.wait(timeout=delay if kill else CALL_TIMEOUT)
        except subprocess.TimeoutExpired:
            killed = kill
            _kill_group(proc.pid)
        out, err = proc.communicate()
        with _running_lock:
            _running.discard(proc.pid)
        seconds = time.perf_counter() - t0
        with self.lock:
            self.stats.ops[verb] += 1
            if killed and proc.returncode == -signal.SIGKILL:
                self.stats.kills[verb] += 1
                return "killed", None
            if proc.returncode != 0:
                hung = not kill and proc.returncode == -signal.SIGKILL
                why = "timed out" if hung else f"exit {proc.returncode}"
                self.stats.failures.append(f"{verb} {pod.container_id[:12]} {why}: "
                                           f"{out.decode(errors='replace').strip()[:300]}"
                                           f" {err.decode(errors='replace').strip()[-300:]}")
                return "failed", None
            if verb in self.typical:
                self.stats.durations[verb].append(seconds)
                d = self.stats.durations[verb]
                self.typical[verb] = sorted(d[-50:])[len(d[-50:]) // 2]
        if verb == "ADD":
            try:
                return "ok", json.loads(out)
            except ValueError:
                with self.lock:
                    self.stats.failures.append(f"ADD {pod.container_id[:12]} printed no result: "
                                               f"{out[:200]!r}")
                return "failed", None
        return "ok", None

    # ------------------------------------------------------------------ the runtime's rules
    def add(self, netns: str, index: int) -> None:
        """ADD a new pod; when it fails or is killed, DEL it the way a runtime does."""
        pod = Pod(secrets.token_hex(32), netns, index)
        with self.lock:
            self.ids.add(pod.container_id)
        outcome, result = self.call("ADD", pod)
        if outcome == "ok" and result is not None:
            pod.ips = soakcheck.ips_of(result)
            with self.lock:
                self.live[pod.container_id] = pod
            return
        self.delete(pod)

    def delete(self, pod: Pod, kills: bool = True) -> bool:
        """DEL until it succeeds (a killed or failed DEL is retried); False after DEL_RETRIES."""
        for _ in range(DEL_RETRIES):
            outcome, _ = self.call("DEL", pod) if kills else self._call_unkilled(pod)
            if outcome == "ok":
                with self.lock:
                    self.live.pop(pod.container_id, None)
                return True
        return False

    def _call_unkilled(self, pod: Pod) -> tuple[str, None]:
        share, self.kill_share = self.kill_share, 0.0
        try:
            return self.call("DEL", pod)[0], None
        finally:
            self.kill_share = share

    def step(self, slot: int) -> None:
        """One operation of a slot: ADD a pod into a free namespace, or DEL one of its live pods."""
        netns_list = self.slots[slot]
        with self.lock:
            mine = [p for p in self.live.values() if p.netns in netns_list]
        used = {p.netns for p in mine}
        free = [n for n in netns_list if n not in used]
        with self.rng_lock:
            do_add = free and (not mine or self.rng.random() < 0.55)
            choice = self.rng.choice(free) if do_add else self.rng.choice(mine)
        if do_add:
            self.add(choice, netns_list.index(choice) + slot * len(netns_list))
        else:
            self.delete(choice)

    def status(self) -> bool:
        """STATUS of the list, as containerd 2.x asks it; a failure is counted with the others."""
        return self.call("STATUS", Pod("", "", -1), arg="")[0] == "ok"

    def gc(self, valid: list[Pod]) -> bool:
        """GC of the list with ``valid`` as the attachments still wanted (none: every attachment)."""
        listed = ",".join(f"{p.container_id}/eth0" for p in valid)
        return self.call("GC", Pod("", "", -1), arg=listed)[0] == "ok"

    # ------------------------------------------------------------------ what the node holds
    def reserved(self) -> dict[str, str]:
        d = self.data_dir / self.network
        files = {p.name: p.read_bytes() for p in d.iterdir()} if d.is_dir() else {}
        return soakcheck.reservations(files)

    def check_wave(self) -> None:
        with self.lock:
            live = {cid: p.ips for cid, p in self.live.items()}
            self.stats.waves += 1
            self.stats.most_live = max(self.stats.most_live, len(live))
        dup = soakcheck.duplicates(live)
        self.stats.duplicates += [f"wave {self.stats.waves}: {ip} held by {', '.join(p[:12] for p in pods)}"
                                  for ip, pods in dup.items()]
        self.stats.faults += [f"wave {self.stats.waves}: {f}"
                              for f in soakcheck.reservation_faults(self.reserved(), live)]

    def leftovers(self) -> list[str]:
        """Everything of any pod still on this side's node, after the final DEL."""
        out = [f"reservation {ip} ({owner[:12]})" for ip, owner in sorted(self.reserved().items())]
        results = self.cache_dir / "results"
        if results.is_dir():
            out += [f"cached result {p.name}" for p in results.iterdir()]
        out += soakcheck.link_leftovers(_links(self.node), {"lo", self.bridge})
        for netns in (n for slot in self.slots for n in slot):
            left = soakcheck.link_leftovers(_links(netns), {"lo"})
            out += [f"{os.path.basename(netns)}: {x}" for x in left]
        for tool in ("iptables-save", "ip6tables-save"):
            out += soakcheck.iptables_leftovers(_in_node(self.node, [tool]), self.ids)
        out += soakcheck.nft_leftovers(_in_node(self.node, ["nft", "list", "ruleset"]), self.ids)
        return out


def _commit() -> str:
    proc = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, check=False)
    return proc.stdout.strip() or "unknown"


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _in_node(node: str, argv: list[str]) -> str:
    proc = subprocess.run(["nsenter", f"--net={node}", "--", *argv], capture_output=True, text=True,
                          timeout=60)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} in {node}: {proc.stderr.strip()}")
    return proc.stdout


def _links(netns: str) -> list[dict[str, Any]]:
    return json.loads(_in_node(netns, ["ip", "-j", "-d", "link", "show"]) or "[]")


def find_realnode(given: str | None, relative: str) -> str:
    """``given``, else ``relative`` in the real-node binaries; RuntimeError naming what is missing."""
    if given:
        return given
    path, why = realnode.find(relative)
    if path is None:
        raise RuntimeError(f"{why}; give it on the command line")
    return str(path)


def wave(side: Side, steps: int, gc_every: int) -> None:
    """Every slot runs `steps` operations at once; then STATUS (and every `gc_every` waves GC with
    the live pods valid) and the invariants are read."""
    t0 = time.monotonic()
    threads = [threading.Thread(target=lambda s=s: [side.step(s) for _ in range(steps)])
               for s in range(len(side.slots))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    side.status()
    if gc_every and (side.stats.waves + 1) % gc_every == 0:
        with side.lock:
            live = list(side.live.values())
        side.gc(live)
    side.stats.seconds += time.monotonic() - t0
    side.check_wave()


def run(args: argparse.Namespace, host: Host) -> dict[str, Any]:
    plugins = soakcheck.example_plugins(Path(p) for p in args.conflist) if args.conflist else \
        soakcheck.example_plugins(EXAMPLES.glob("*.conflist"))
    types = [p["type"] for p in plugins]
    cnidrive = find_realnode(args.cnidrive, realnode.CNIDRIVE)
    ref = find_realnode(args.ref, realnode.PLUGINS)
    rng = random.Random(args.seed)
    sides = {}
    for name, src in (("ours", args.ours), ("ref", ref)):
        bin_dir = snapshot(src, host.directory(f"bin-{name}"))
        missing = [t for t in [*types, "host-local"] if not os.path.exists(os.path.join(bin_dir, t))]
        if missing:
            raise RuntimeError(f"{name} ({src}) has no {', '.join(missing)}")
        sides[name] = Side(name, bin_dir, host, plugins, args.slots, args.pods, cnidrive, args.kill_share,
                           random.Random(rng.random()))
        if name == "ours" and args.warm:
            sides[name].start_warm()
    try:
        return _soak(args, host, sides, types, ref)
    finally:
        for side in sides.values():
            if side.warm:
                side.warm.stop()


def _soak(args: argparse.Namespace, host: Host, sides: dict[str, Side], types: list[str], ref: str
          ) -> dict[str, Any]:
    log(f"chain {' -> '.join(types)}; {args.slots} slots x {args.pods} pods per side; "
        f"{args.kill_share:.0%} of calls killed; {args.operations} operations per side")
    started = time.monotonic()
    last_log = started
    while any(s.stats.total < args.operations for s in sides.values()):
        for side in sides.values():
            if side.stats.total < args.operations:
                wave(side, args.steps, args.gc_every)
        if time.monotonic() - last_log > 30:
            last_log = time.monotonic()
            log(", ".join(f"{n} {s.stats.total} ops, {sum(s.stats.kills.values())} kills, "
                          f"{len(s.stats.failures)} failures, {len(s.stats.duplicates)} duplicates"
                          for n, s in sides.items()))
    for side in sides.values():
        t0 = time.monotonic()
        for pod in list(side.live.values()):
            if not side.delete(pod):
                side.delete(pod, kills=False)
        side.stats.seconds += time.monotonic() - t0
        side.check_wave()
        side.stats.leftovers = side.leftovers()
        side.gc([])
        side.stats.after_gc = side.leftovers()
    return {"run_id": host.run_id, "chain": types, "slots": args.slots, "pods_per_slot": args.pods,
            "kill_share": args.kill_share, "seed": args.seed, "target_operations": args.operations,
            "cni_version": SOAK_CNI_VERSION, "gc_every": args.gc_every, "ref": ref,
            "libcni": "libcni v1.3.0 (cnidrive)",
            "wall_seconds": round(time.monotonic() - started, 1),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": _commit(),
            "loadavg_end": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
            "sides": {n: s.stats.summary() for n, s in sides.items()},
            "warm": {"served": sides["ours"].warm.served(), "refused": sides["ours"].warm.refused()}
            if sides["ours"].warm else None}


def markdown(res: dict[str, Any]) -> str:
    """The soak's table, ours and the reference's side by side."""
    o, r = res["sides"]["ours"], res["sides"]["ref"]
    rows = [
        ("operations (ADD + DEL through libcni)", o["operations"], r["operations"]),
        ("of which ADD / DEL", f"{o['ops']['ADD']} / {o['ops']['DEL']}",
         f"{r['ops']['ADD']} / {r['ops']['DEL']}"),
        ("STATUS / GC (never killed)", f"{o['ops']['STATUS']} / {o['ops']['GC']}",
         f"{r['ops']['STATUS']} / {r['ops']['GC']}"),
        ("SIGKILLed (ADD / DEL)", f"{o['kills']['ADD']} / {o['kills']['DEL']}",
         f"{r['kills']['ADD']} / {r['kills']['DEL']}"),
        ("failures of calls not killed", o["unkilled_failures"], r["unkilled_failures"]),
        ("addresses held by two live pods", o["duplicates"], r["duplicates"]),
        ("reservation faults between waves", o["wave_faults"], r["wave_faults"]),
        ("left after the final DEL", len(o["leftovers"]), len(r["leftovers"])),
        ("left after a GC with no valid attachment", len(o["after_gc"]), len(r["after_gc"])),
        ("most pods alive at once", o["most_live_pods"], r["most_live_pods"]),
        ("median ADD / DEL (ms, unkilled)", f"{o['median_ms']['ADD']} / {o['median_ms']['DEL']}",
         f"{r['median_ms']['ADD']} / {r['median_ms']['DEL']}"),
        ("time of the side's waves (s)", o["seconds"], r["seconds"]),
    ]
    lines = [f"Soak of {res['date']}: chain `{' -> '.join(res['chain'])}` (ipMasq on, cniVersion "
             f"{res['cni_version']}) through {res['libcni']}, reference {res['ref']}, GC every "
             f"{res['gc_every']} waves, "
             f"{res['slots']} slots x "
             f"{res['pods_per_slot']} pods per side, {res['kill_share']:.0%} of calls SIGKILLed at a random "
             f"moment, seed {res['seed']}, {res['wall_seconds']} s in all, pycni {res['commit']}.", "",
             "| | ours | reference |", "| --- | ---: | ---: |"]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    for name, s in res["sides"].items():
        for what in ("failures", "duplicate_samples", "wave_fault_samples", "leftovers", "after_gc"):
            if s[what]:
                lines += ["", f"{name} {what}:", *[f"- {x}" for x in s[what][:20]]]
    return "\n".join(lines) + "\n"


def failed(res: dict[str, Any]) -> bool:
    """Whether our side broke a rule (the reference's figures are reported, not judged)."""
    s = res["sides"]["ours"]
    return bool(s["unkilled_failures"] or s["duplicates"] or s["wave_faults"] or s["leftovers"]
                or s["after_gc"])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python3 -m bench soak", description=__doc__.splitlines()[0])
    p.add_argument("--operations", type=int, default=10_000, help="operations per side (default 10000)")
    p.add_argument("--slots", type=int, default=4, help="pods worked on at once per side (default 4)")
    p.add_argument("--pods", type=int, default=6, help="namespaces per slot: pods alive per slot (default 6)")
    p.add_argument("--steps", type=int, default=4, help="operations per slot between checks (default 4)")
    p.add_argument("--kill-share", type=float, default=0.2, help="share of calls SIGKILLed (default 0.2)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: a new one, reported)")
    p.add_argument("--ours", default=str(REPO / "dist" / "bin"))
    p.add_argument("--warm", action="store_true", help="our calls through a warm process (pycni serve)")
    p.add_argument("--gc-every", type=int, default=5,
                   help="waves between GCs with the live pods valid (default 5; 0: only the final GC)")
    p.add_argument("--ref", help="the reference plugins (default: v1.9.1 from ../shared/realnode)")
    p.add_argument("--cnidrive", help="the libcni driver (default: libcni-v1.3.0/cnidrive from "
                                      "../shared/realnode)")
    p.add_argument("--conflist", action="append", help="the chain's list instead of conf/examples/*.conflist")
    p.add_argument("--out", default=str(REPO / "bench" / "results"))
    p.add_argument("--stem", default="soak")
    a = p.parse_args(argv)
    if a.seed is None:
        a.seed = secrets.randbelow(1 << 30)
    if a.slots * a.pods > 200:
        p.error("slots x pods must stay under 200 (one /24 per side)")
    return a


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("the soak needs root (network namespaces): sudo python3 -m bench soak", file=sys.stderr)
        return 2
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    host = Host()
    rc = 0
    try:
        res = run(args, host)
        text = markdown(res)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{args.stem}.md").write_text(text)
        (out / f"{args.stem}.json").write_text(json.dumps(res, indent=1) + "\n")
        print(text)
        rc = 1 if failed(res) else 0
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        rc = 130
    except (RuntimeError, OSError) as exc:
        log(f"error: {exc}")
        rc = 2
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        with _running_lock:
            for pid in list(_running):
                _kill_group(pid)
        left = host.cleanup()
        if left:
            log("left behind (remove by hand): " + ", ".join(left))
            rc = rc or 2
    return rc


if __name__ == "__main__":
    sys.exit(main())
