"""ADD and DEL latency of ``bridge`` + ``host-local``: ours against the reference, interleaved.

    sudo python3 bench/bridge_chain.py [--n 100] [--ours dist/bin] [--ref /usr/lib/cni]

Each round runs one pod through ours and one through the reference, alternating which goes first:
a fresh network namespace (made outside the timing), ADD, then DEL with the ADD result as
prevResult, the way libcni calls the plugin. Each side has its own bridge (created by its first ADD,
then reused, as on a node) and its own IPAM data directory. The time is the whole ``bridge``
process, including the host-local call it delegates to. Prints medians and p90; removes
everything it made, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def conf(name: str, bridge: str, data_dir: str) -> dict:
    return {"cniVersion": "1.0.0", "name": name, "type": "bridge", "bridge": bridge, "isGateway": True,
            "ipam": {"type": "host-local", "subnet": "198.19.0.0/16", "dataDir": data_dir,
                     "routes": [{"dst": "0.0.0.0/0"}]}}


def call(bin_dir: str, verb: str, config: dict, netns: str, cid: str) -> tuple[float, dict | None]:
    env = {"PATH": os.environ.get("PATH", ""), "CNI_COMMAND": verb, "CNI_CONTAINERID": cid,
           "CNI_NETNS": netns, "CNI_IFNAME": "eth0", "CNI_ARGS": "IgnoreUnknown=1", "CNI_PATH": bin_dir}
    data = json.dumps(config).encode()
    start = time.perf_counter()
    proc = subprocess.run([os.path.join(bin_dir, "bridge")], input=data, env=env, capture_output=True,
                          check=False)
    elapsed = (time.perf_counter() - start) * 1000
    if proc.returncode != 0:
        raise RuntimeError(f"{bin_dir}/bridge {verb}: {proc.stdout.decode()} {proc.stderr.decode()}")
    out = proc.stdout.strip()
    return elapsed, (json.loads(out) if out else None)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100, help="pods per side")
    p.add_argument("--ours", default=str(REPO / "dist" / "bin"))
    p.add_argument("--ref", default="/usr/lib/cni")
    a = p.parse_args()
    tag = secrets.token_hex(3)
    tmp = Path(tempfile.mkdtemp(prefix="pycni-bridge-bench-"))
    sides = {"ours": (a.ours, f"pcbbo{tag}"), "reference": (a.ref, f"pcbbr{tag}")}
    times: dict[str, dict[str, list[float]]] = {s: {"ADD": [], "DEL": []} for s in sides}
    made: list[str] = []
    try:
        for i in range(a.n):
            order = list(sides) if i % 2 == 0 else list(reversed(sides))
            for side in order:
                bin_dir, bridge = sides[side]
                ns = f"pcbb-{tag}-{side[0]}{i}"
                subprocess.run(["ip", "netns", "add", ns], check=True)
                made.append(ns)
                cfg = conf(f"pcbbench-{side}", bridge, str(tmp / side))
                cid = f"bench-{tag}-{side}-{i}"
                t_add, result = call(bin_dir, "ADD", cfg, f"/var/run/netns/{ns}", cid)
                t_del, _ = call(bin_dir, "DEL", {**cfg, "prevResult": result}, f"/var/run/netns/{ns}", cid)
                times[side]["ADD"].append(t_add)
                times[side]["DEL"].append(t_del)
                subprocess.run(["ip", "netns", "del", ns], check=True)
                made.remove(ns)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], check=False)
        for _, bridge in sides.values():
            subprocess.run(["ip", "link", "del", bridge], capture_output=True, check=False)
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"bridge + host-local, {a.n} pods per side, interleaved (ms, whole plugin process)")
    print("| chain | ADD median | ADD p90 | DEL median | DEL p90 |")
    print("| --- | --- | --- | --- | --- |")
    for side, t in times.items():
        q = {v: statistics.quantiles(t[v], n=10) for v in t}
        print(f"| {side} | {statistics.median(t['ADD']):.1f} | {q['ADD'][8]:.1f} | "
              f"{statistics.median(t['DEL']):.1f} | {q['DEL'][8]:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
