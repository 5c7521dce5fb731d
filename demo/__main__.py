"""pycni demo: three pods on cbr0, pings, CHECK, DEL, and proof that nothing is left.

    sudo ./build.sh demo            (builds the plugins, then runs this)
    sudo python3 -m demo [--bin DIR] [--config FILE] [--pods N]

Runs the example network configuration list (loopback + bridge on cbr0 with host-local
10.1.0.0/24) through the built plugin executables exactly as a container runtime does, with a
private IPAM data directory. Whatever happens, including Ctrl-C or SIGTERM, it deletes what it
made: the pods' attachments, their namespaces, its data directory, and cbr0 if it created it.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .ping import ping
from .runtime import Attachment, Runtime
from .throughput import tcp_rate

REPO = Path(__file__).resolve().parent.parent
SYSCTLS = ("/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding")
# pod-a carries kubernetes.io/ingress-bandwidth and egress-bandwidth: 10M; containerd passes them
# to the chain as the bandwidth capability with its burst of 2^32-1 bits.
SHAPED_RATE = 10_000_000
SHAPED_CAPS = {"bandwidth": {"ingressRate": SHAPED_RATE, "ingressBurst": 2**32 - 1,
                             "egressRate": SHAPED_RATE, "egressBurst": 2**32 - 1}}
SHAPED_TRIES = 3


def within_tolerance(rate: float) -> bool:
    return abs(rate / SHAPED_RATE - 1) <= 0.15


class Interrupted(Exception):
    pass


def _on_signal(signum: int, _frame: object) -> None:
    raise Interrupted(signal.Signals(signum).name)


def say(text: str = "") -> None:
    print(text, flush=True)


def step(text: str) -> None:
    say(f"\n== {text}")


def ok(text: str) -> None:
    say(f"   ok   {text}")


def bad(text: str) -> None:
    say(f"   FAIL {text}")


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def link_exists(name: str) -> bool:
    return ip("link", "show", "dev", name, check=False).returncode == 0


def bridge_ports(bridge: str) -> list[str]:
    out = subprocess.run(["bridge", "-j", "link", "show"], capture_output=True, text=True, check=False)
    try:
        return [p["ifname"] for p in json.loads(out.stdout or "[]") if p.get("master") == bridge]
    except ValueError:
        return []


class Demo:
    def __init__(self, bin_dir: Path, config: Path, pods: int) -> None:
        self.bin_dir = bin_dir
        self.config_path = config
        self.npods = pods
        self.conflist = json.loads(config.read_text())
        self.data_dir = Path(tempfile.mkdtemp(prefix="pycni-demo-ipam-"))
        self.bridge_conf = next(p for p in self.conflist["plugins"] if p["type"] == "bridge")
        self.bridge_conf.setdefault("ipam", {})["dataDir"] = str(self.data_dir)
        self.bridge = self.bridge_conf.get("bridge", "cni0")
        self.created_bridge = not link_exists(self.bridge)
        self.sysctls = {p: Path(p).read_text() for p in SYSCTLS if Path(p).exists()}
        self.runtime = Runtime(self.conflist, [str(bin_dir)])
        self.tag = secrets.token_hex(3)
        self.namespaces: list[str] = []
        self.attached: list[tuple[str, Attachment]] = []
        self.failures = 0

    # ---- the story -----------------------------------------------------------------------------
    def run(self) -> None:
        step("Setup")
        shown = self.config_path
        if shown.is_relative_to(REPO):
            shown = shown.relative_to(REPO)
        say(f"   network  {self.conflist['name']} (cniVersion {self.conflist['cniVersion']}) from {shown}")
        say(f"   chain    {' -> '.join(p['type'] for p in self.conflist['plugins'])}")
        say(f"   plugins  {self.bin_dir}")
        fate = "will be created, and removed at the end" if self.created_bridge else "exists already; kept"
        say(f"   bridge   {self.bridge} ({fate})")
        ipam = self.bridge_conf["ipam"]
        say(f"   IPAM     {ipam.get('type')} {ipam.get('subnet', '')}, private dataDir {self.data_dir}")

        step(f"ADD: {self.npods} pods, each in its own network namespace")
        for i in range(self.npods):
            pod = f"pod-{chr(ord('a') + i)}"
            ns = f"pycni-demo-{self.tag}-{pod}"
            ip("netns", "add", ns)
            self.namespaces.append(ns)
            cid = secrets.token_hex(32)
            att = Attachment(container_id=cid, netns=f"/var/run/netns/{ns}", ifname="eth0",
                             cni_args=f"IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME={pod};"
                                      f"K8S_POD_INFRA_CONTAINER_ID={cid}",
                             capability_args=SHAPED_CAPS if i == 0 else {})
            self.attached.append((pod, att))
            started = time.monotonic()
            result = self.runtime.add(att)
            ms = (time.monotonic() - started) * 1000
            addr = result["ips"][0]["address"]
            host = next(i["name"] for i in result["interfaces"] if i["name"].startswith("veth"))
            mac = next(i["mac"] for i in result["interfaces"] if i.get("sandbox") and i["name"] == "eth0")
            say(f"   {pod}  netns {ns}  eth0 {addr:<16} mac {mac}  host port {host}  ({ms:.0f} ms)")
        br = json.loads(ip("-j", "addr", "show", "dev", self.bridge).stdout)[0]
        gws = [f"{a['local']}/{a['prefixlen']}" for a in br["addr_info"] if a.get("scope") == "global"]
        say(f"   {self.bridge}: gateway {', '.join(gws) or 'none'}, {len(bridge_ports(self.bridge))} ports")

        step("Connectivity (ICMP echo from inside each pod)")
        gateway = self.attached[0][1].result["ips"][0].get("gateway")
        addrs = {pod: att.result["ips"][0]["address"].split("/")[0] for pod, att in self.attached}
        pods = [pod for pod, _ in self.attached]
        pairs = [(pod, gateway, "gateway") for pod in pods if gateway]
        pairs += [(a, addrs[b], b) for a, b in zip(pods, pods[1:] + pods[:1], strict=True) if a != b]
        netns_of = {pod: att.netns for pod, att in self.attached}
        for src, dst, label in pairs:
            rtt = ping(netns_of[src], dst)
            if rtt is None:
                self.failures += 1
                bad(f"{src} -> {label} ({dst}): no reply")
            else:
                ok(f"{src} -> {label} ({dst}): reply in {rtt:.2f} ms")

        self._bandwidth()

        step("CHECK: every plugin compares the system with the ADD result")
        for pod, att in self.attached:
            self.runtime.check(att)
            ok(f"{pod}: {', '.join(p['type'] for p in self.conflist['plugins'])} report no drift")

        step("DEL: every pod, plugins in reverse order")
        for pod, att in list(self.attached):
            self.runtime.delete(att)
            self.attached.remove((pod, att))
            ok(f"{pod}: deleted")
        self._verify_released()

    def _bandwidth(self) -> None:
        """Measure pod-a's shaped rate both ways, and an unshaped pair for comparison."""
        if not any(p["type"] == "bandwidth" for p in self.conflist["plugins"]):
            return
        shaped, a = self.attached[0]
        other = self.attached[1][0]
        step(f"Bandwidth: {shaped} is annotated {SHAPED_RATE / 1e6:g} Mbit/s each way (burst 2^32-1 bits)")
        devs = [(i["name"], "towards the pod" if i["name"].startswith("veth") else "from the pod")
                for i in a.result["interfaces"] if i["name"].startswith(("veth", "bwp"))]
        for dev, what in devs:
            tc = subprocess.run(["tc", "qdisc", "show", "dev", dev, "root"], capture_output=True, text=True,
                                check=False)
            say(f"   {what:<16} {dev}: {tc.stdout.strip() or 'no qdisc'}")
        addr = {pod: att.result["ips"][0]["address"].split("/")[0] for pod, att in self.attached}
        netns_of = {pod: att.netns for pod, att in self.attached}
        runs = [(other, shaped, f"towards {shaped}", True), (shaped, other, f"from {shaped}", True)]
        if len(self.attached) > 2:
            runs.append((other, self.attached[2][0], "no limit", False))
        for src, dst, label, limited in runs:
            skip, window = ((256 << 10), 2.0) if limited else ((1 << 20), 0.5)
            rates: list[float] = []
            try:
                # TCP finds a shaped rate by its losses; on a busy machine one window can land in a
                # backoff, so a shaped pair gets up to three windows to show its rate.
                for _ in range(SHAPED_TRIES if limited else 1):
                    rates.append(tcp_rate(netns_of[src], netns_of[dst], addr[dst], skip=skip, window=window))
                    if not limited or within_tolerance(rates[-1]):
                        break
            except (OSError, RuntimeError) as e:
                self.failures += 1
                bad(f"TCP {src} -> {dst}: {e}")
                continue
            shown = ", then ".join(f"{r / 1e6:.2f}" for r in rates)
            text = f"TCP {src} -> {dst} ({label}): {shown} Mbit/s"
            if limited and not within_tolerance(rates[-1]):
                self.failures += 1
                bad(text + f", expected {SHAPED_RATE / 1e6:g} within 15 %")
            else:
                ok(text)

    def _verify_released(self) -> None:
        step("Proof nothing is left of the pods")
        ports = bridge_ports(self.bridge)
        (ok if not ports else bad)(f"{self.bridge} has {len(ports)} ports left {ports or ''}")
        self.failures += bool(ports)
        for ns in self.namespaces:
            links = json.loads(ip("-n", ns, "-j", "link", "show").stdout)
            extra = [link["ifname"] for link in links if link["ifname"] != "lo"]
            (ok if not extra else bad)(f"{ns}: {'only lo' if not extra else 'still has ' + ', '.join(extra)}")
            self.failures += bool(extra)
        net_dir = self.data_dir / self.conflist["name"]
        names = [p.name for p in net_dir.iterdir()] if net_dir.exists() else []
        reserved = sorted(n for n in names if n[0].isdigit() or ":" in n)
        (ok if not reserved else bad)(f"IPAM: {len(reserved)} addresses reserved {reserved or ''}")
        self.failures += bool(reserved)
        ifbs = [x["ifname"] for x in json.loads(ip("-j", "link", "show", "type", "ifb").stdout or "[]")
                if x["ifname"].startswith("bwp")]
        (ok if not ifbs else bad)(f"bandwidth: {len(ifbs)} bwp* IFB devices left {ifbs or ''}")
        self.failures += bool(ifbs)

    # ---- cleanup, whatever happened ------------------------------------------------------------
    def cleanup(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)  # finish cleaning even if asked to stop again
        step("Cleanup")
        for pod, att in self.attached:
            try:
                self.runtime.delete(att)
                say(f"   DEL {pod} (left over from an interrupted run)")
            except Exception as e:
                say(f"   DEL {pod}: {e}")
        for ns in self.namespaces:
            ip("netns", "del", ns, check=False)
        left_ns = [ns for ns in self.namespaces if Path(f"/var/run/netns/{ns}").exists()]
        (ok if not left_ns else bad)(f"pod namespaces removed{': left ' + str(left_ns) if left_ns else ''}")
        if self.created_bridge and link_exists(self.bridge):
            ip("link", "del", self.bridge, check=False)
        if self.created_bridge:
            (ok if not link_exists(self.bridge) else bad)(f"{self.bridge} removed (this demo created it)")
        else:
            ok(f"{self.bridge} kept (it existed before the demo)")
        for path, value in self.sysctls.items():
            if Path(path).read_text() != value:
                Path(path).write_text(value)
        ok("forwarding sysctls as they were")
        subprocess.run(["rm", "-rf", str(self.data_dir)], check=False)
        (ok if not self.data_dir.exists() else bad)(f"private IPAM dataDir {self.data_dir} removed")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--bin", type=Path, default=REPO / "dist" / "bin", help="plugin directory (CNI_PATH)")
    parser.add_argument("--config", type=Path, default=REPO / "conf" / "examples" / "10-pycni-cbr0.conflist")
    parser.add_argument("--pods", type=int, default=3)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        say("the demo creates network namespaces and a bridge: run it as root (sudo ./build.sh demo)")
        return 2
    if not (args.bin / "bridge").exists():
        say(f"no plugins in {args.bin}: build them first (./build.sh)")
        return 2
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _on_signal)
    demo = Demo(args.bin.resolve(), args.config.resolve(), max(2, args.pods))
    code = 0
    try:
        demo.run()
    except Interrupted as e:
        say(f"\n   interrupted ({e}): cleaning up")
        code = 130
    except Exception as e:
        say(f"\n   FAILED: {e}")
        code = 1
    finally:
        demo.cleanup()
    if code == 0 and demo.failures:
        code = 1
    if code == 0:
        say("\ndemo finished: all steps passed, the host is as before")
    elif code == 130:
        say("\ndemo interrupted; the host was cleaned up")
    else:
        say("\ndemo finished with failures (see above); the host was cleaned up")
    return code


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main(sys.argv[1:]))
