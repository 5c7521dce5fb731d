#!/usr/bin/env python3
"""host-local ADD and DEL times, ours against the reference plugin, measured in one interleaved run.

Each round runs, in turn: our ADD, the reference's ADD, our DEL, the reference's DEL (the order of
the two implementations alternates between rounds), each a fresh process as a runtime starts it,
on a dual-stack configuration in a private data directory. Our VERSION call, which does no work
beyond starting the bundle, is measured in the same rounds as the floor of any call.

    python3 bench/hostlocal.py [--runs 100] [--ours dist/bin/host-local] [--ref PATH]

``--ref`` defaults to host-local v1.9.1 from ../shared/realnode (``bench/realnode.py``), the one
kind ships; Debian 12's 1.1.1 is /usr/lib/cni/host-local.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def reference() -> str:
    """host-local of the reference kind ships; SystemExit naming what is missing."""
    sys.path.insert(0, str(REPO))
    from bench import realnode

    path, why = realnode.find(realnode.PLUGINS)
    if path is None:
        raise SystemExit(f"no reference host-local: {why}; give --ref PATH")
    return str(path / "host-local")


def config(data_dir: str, name: str) -> bytes:
    return json.dumps({
        "cniVersion": "1.0.0", "name": name, "type": "bridge",
        "ipam": {"type": "host-local", "dataDir": data_dir,
                 "ranges": [[{"subnet": "10.88.0.0/16"}], [{"subnet": "fd88::/64"}]],
                 "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]},
    }).encode()


def timed(plugin: str, command: str, stdin: bytes, cid: str) -> float:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "CNI_COMMAND": command, "CNI_CONTAINERID": cid,
           "CNI_NETNS": "/var/run/netns/bench", "CNI_IFNAME": "eth0", "CNI_PATH": str(Path(plugin).parent),
           "CNI_ARGS": ""}
    start = time.perf_counter()
    proc = subprocess.run([plugin], input=stdin, env=env, capture_output=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{plugin} {command} failed: {proc.stdout.decode()} {proc.stderr.decode()}")
    return elapsed * 1000


def summary(samples: list[float]) -> str:
    q = statistics.quantiles(samples, n=10)
    return f"median {statistics.median(samples):6.1f} ms   p10 {q[0]:6.1f}   p90 {q[-1]:6.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--ours", default=str(REPO / "dist" / "bin" / "host-local"))
    parser.add_argument("--ref", help="the reference host-local (default: v1.9.1 from ../shared/realnode)")
    opts = parser.parse_args()
    opts.ref = opts.ref or reference()

    data_dir = tempfile.mkdtemp(prefix="hostlocal-bench-")
    try:
        impls = {"ours": opts.ours, "reference": opts.ref}
        stdin = {label: config(data_dir, f"bench-{label}") for label in impls}
        times: dict[tuple[str, str], list[float]] = {}
        for label, plugin in impls.items():  # warm the page cache, not measured
            timed(plugin, "ADD", stdin[label], "warm")
            timed(plugin, "DEL", stdin[label], "warm")
        for i in range(opts.runs):
            order = list(impls.items()) if i % 2 == 0 else list(reversed(impls.items()))
            for command in ("ADD", "DEL"):
                for label, plugin in order:
                    sample = timed(plugin, command, stdin[label], f"c{i}")
                    times.setdefault((label, command), []).append(sample)
            times.setdefault(("ours", "VERSION"), []).append(timed(opts.ours, "VERSION", b"", "v"))
        print(f"host-local, {opts.runs} interleaved rounds, dual-stack ranges, {os.cpu_count()} CPUs")
        for (label, command), samples in sorted(times.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            print(f"  {command:7} {label:9} {summary(samples)}")
        for command in ("ADD", "DEL"):
            ours, ref = (statistics.median(times[(label, command)]) for label in impls)
            ratio = ours / ref
            print(f"  {command}: ours / reference = {ratio:.1f}x")
        floor = statistics.median(times[("ours", "VERSION")])
        print(f"  ADD: ours / our VERSION = {statistics.median(times[('ours', 'ADD')]) / floor:.2f}x")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
