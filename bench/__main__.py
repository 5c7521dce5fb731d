"""``sudo python3 -m bench``: our plugins against the reference ones, interleaved, in one run.

``sudo python3 -m bench soak`` is the reliability soak instead (see ``bench/soak.py``).

Writes ``<out>/<stem>.md`` (the tables), ``<out>/<stem>.json`` (every sample) and
``<out>/<stem>-fill.png`` (latency per pod index), prints the tables, and leaves nothing on the
host: namespaces, bridges, IFBs and state are removed on success, on failure and on SIGINT/SIGTERM.
Exit status: 0, 1 when any plugin call failed, 2 on a usage or setup error, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import floor, realnode, report
from .host import Host
from .scenarios import Bench, log

REPO = Path(__file__).resolve().parent.parent
FIGURES_DOC = REPO / "docs" / "BENCHMARKS.md"  # the full tables; README.md quotes a few headline figures
FIGURES_BEGIN = "<!-- figures:begin -->"
FIGURES_END = "<!-- figures:end -->"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python3 -m bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="a few iterations of everything (a smoke test, well under a minute)")
    p.add_argument("--ours", default=str(REPO / "dist" / "bin"),
                   help="our plugin directory (default: dist/bin, built by ./build.sh)")
    p.add_argument("--ref", help="the reference plugins (default: the v1.9.1 plugins kind ships, from "
                                 "../shared/realnode; Debian 12's 1.1.1 are /usr/lib/cni)")
    p.add_argument("--out", default=str(REPO / "bench" / "results"), help="where the results go")
    p.add_argument("--iterations", type=int, help="pods per chain and side, one at a time (default 200)")
    p.add_argument("--fill", type=int, help="pods in the /24 fill (default 250, at most 250)")
    p.add_argument("--levels", default="1,8,32", help="pods at once, comma-separated (default 1,8,32)")
    p.add_argument("--concurrent-samples", type=int,
                   help="pods per concurrency level; rounds = this / level (default 96)")
    p.add_argument("--path", choices=("cold", "both"),
                   help="which launch paths of ours to measure against the reference: cold (a process "
                        "per call) or both, cold and warm (calls handed to `pycni serve`, started from "
                        "the same bundle for the run), interleaved (default: both when the bundle has "
                        "`pycni serve`, else cold)")
    p.add_argument("--no-floor", action="store_true", help="do not build and time the empty bundle")
    p.add_argument("--no-snapshot", action="store_true",
                   help="run the plugins in place instead of from a private copy")
    p.add_argument("--docs", "--readme", dest="docs", action="store_true",
                   help=f"also put the tables into docs/BENCHMARKS.md between {FIGURES_BEGIN} and "
                        f"{FIGURES_END} (--readme is the old name)")
    p.add_argument("--publish", action="store_true",
                   help="only render the last full run (<out>/latest.json) again into latest.md and "
                        "docs/BENCHMARKS.md, then stop")
    a = p.parse_args(argv)
    quick = a.quick
    a.iterations = a.iterations if a.iterations is not None else (5 if quick else 200)
    a.warmup = 1 if quick else 5
    a.memory_cycles = 1 if quick else 5
    a.fill = min(250, a.fill if a.fill is not None else (12 if quick else 250))
    a.concurrent_samples = a.concurrent_samples if a.concurrent_samples is not None else (1 if quick else 96)
    a.levels = [int(x) for x in a.levels.split(",") if x.strip()]
    a.stem = "quick" if quick else "latest"
    return a


def default_ref() -> str:
    """The reference kind ships (``bench/realnode.py``); SystemExit(2) naming what is missing."""
    path, why = realnode.find(realnode.PLUGINS)
    if path is None:
        log(f"no reference plugins: {why}; give --ref DIR")
        raise SystemExit(2)
    return str(path)


def start_warm(bench: Bench, host: Host, path: str | None) -> Any:
    """`pycni serve` from our (snapshotted) bundle, its socket given to the warm side; None when
    only the cold path is measured. SystemExit(2) when --path asks for warm and it cannot start."""
    if path == "cold":
        return None
    from .warmserve import WarmServer

    server = None
    try:
        server = WarmServer(Path(bench.drivers["ours"].bin_dir), host.directory("warm"))
    except (RuntimeError, OSError) as exc:  # OSError: no `pycni` in the bundle
        why = f"`pycni serve` did not start: {str(exc).strip()[-300:]}"
    if server is None:
        if path is not None:
            log(f"--path {path}: {why}")
            raise SystemExit(2)
        log(f"cold path only: {why}")
        return None
    bench.add_warm(server.socket)
    log(f"warm: pycni serve (pid {server.pid}) on {server.socket}, from {bench.drivers['ours'].bin_dir}")
    return server


def warm_figures(server: Any) -> dict[str, Any]:
    """What the warm process cost and did: its memory now and at its peak, the calls it served."""
    status = {}
    try:
        for line in Path(f"/proc/{server.pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM", "RssAnon"):
                status[key] = int(value.split()[0])
    except OSError:
        pass
    return {"pid": server.pid, "rss_kib": status.get("VmRSS"), "hwm_kib": status.get("VmHWM"),
            "anon_kib": status.get("RssAnon"), "served": server.served(), "refused": server.refused()}


def run(args: argparse.Namespace, host: Host) -> dict[str, Any]:
    machine = report.machine()
    bench = Bench(host, args.ours, args.ref, use_snapshot=not args.no_snapshot)
    server = start_warm(bench, host, args.path)
    try:
        return _measure(args, host, bench, machine, server)
    finally:
        if server is not None:
            server.stop()


def _measure(args: argparse.Namespace, host: Host, bench: Bench, machine: dict[str, str],
             server: Any) -> dict[str, Any]:
    for side, found in bench.available.items():
        served = ", ".join(t for t, ok in found.items() if ok) or "nothing"
        log(f"{side}: {bench.source[side]} ({bench.about[side]}) serves {served}")
    log(f"lists at cniVersion {bench.cni_version}, the newest both sides speak")
    if not any(bench.available["ref"].values()):
        raise SystemExit(f"no reference plugin answers VERSION in {args.ref}")

    phases: dict[str, float] = {}

    def phase(name: str, fn: Any, *a: Any) -> None:
        t = time.monotonic()
        fn(*a)
        phases[name] = round(time.monotonic() - t, 1)

    floors: dict[str, list[str]] = {}
    floor_info: dict[str, Any] = {}
    if not args.no_floor:
        log("building the empty bundle with build.sh's PyInstaller options")
        t = time.monotonic()
        exe, options, origin = floor.build_empty_bundle(host.tmp / "floor")
        floor_info = {"options": options, "origin": origin}
        phases["floor build"] = round(time.monotonic() - t, 1)
        floors["empty bundle"] = [str(exe)]
    floors["python3 -I -S printing {}"] = [sys.executable, "-I", "-S", "-c", 'print("{}")']
    floors["/bin/true (spawn cost)"] = ["/bin/true"]

    phase("latency", bench.latency, args.iterations, args.warmup, floors)
    bench.results["floor"].update(floor_info)
    phase("memory", bench.memory, args.memory_cycles, floors)
    phase("concurrency", bench.concurrency, args.levels, args.concurrent_samples)
    phase("fill", bench.fill, args.fill, floors.get("empty bundle"))
    log("phases (s): " + ", ".join(f"{k} {v}" for k, v in phases.items()))

    res = bench.results
    res["sides"] = list(bench.sides)
    if server is not None:
        res["warm"] = warm_figures(server)
        if not res["warm"]["served"]:
            log("the warm process served no call: the warm figures are cold ones")
    res["machine"] = machine
    res["run_id"] = host.run_id
    res["phases"] = phases
    res["loadavg_end"] = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    res["config"] = {"quick": args.quick, "iterations": args.iterations, "warmup": args.warmup,
                     "fill": args.fill, "memory_cycles": args.memory_cycles, "levels": args.levels,
                     "concurrent_samples": args.concurrent_samples,
                     "ours": bench.source["ours"], "ref": bench.source["ref"],
                     "ours_about": bench.about["ours"], "ref_about": bench.about["ref"],
                     "cni_version": bench.cni_version,
                     "snapshot": not args.no_snapshot}
    res["available"] = bench.available
    res["failures"] = bench.rec.failures
    res["errors"] = bench.rec.errors
    res["calls"] = bench.rec.calls
    res["png_name"] = f"{args.stem}-fill.png"
    res["targets"] = report.evaluate(res)
    return res


def write_outputs(res: dict[str, Any], out: Path, stem: str) -> str:
    out.mkdir(parents=True, exist_ok=True)
    png = out / f"{stem}-fill.png"
    res["png"] = str(png) if report.plot(res, png) else ""
    text = report.markdown(res)
    _atomic_write(out / f"{stem}.md", text)
    _atomic_write(out / f"{stem}.json", json.dumps(res, indent=1, default=str) + "\n")
    return text


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def update_doc(text: str) -> bool:
    """Replace what is between the figure markers in docs/BENCHMARKS.md; False when they are missing."""
    try:
        doc = FIGURES_DOC.read_text()
    except FileNotFoundError:
        return False
    begin, end = doc.find(FIGURES_BEGIN), doc.find(FIGURES_END)
    if begin < 0 or end < begin:
        return False
    doc = doc[: begin + len(FIGURES_BEGIN)] + "\n" + text + doc[end:]
    _atomic_write(FIGURES_DOC, doc)
    return True


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["soak"]:
        from . import soak

        return soak.main(argv[1:])
    args = parse_args(argv)
    if args.publish:
        res = json.loads((Path(args.out) / "latest.json").read_text())
        text = report.markdown(res)
        _atomic_write(Path(args.out) / "latest.md", text)
        if not update_doc(text):
            log(f"docs/BENCHMARKS.md has no {FIGURES_BEGIN} ... {FIGURES_END} section")
            return 2
        return 0
    if args.ref is None:
        args.ref = default_ref()
    if os.geteuid() != 0:
        print("the bench needs root (network namespaces, links): sudo python3 -m bench", file=sys.stderr)
        return 2
    # SIGINT too: a shell starts background jobs with SIGINT ignored, and Python then leaves it so.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    host = Host()
    rc = 0
    try:
        started = time.monotonic()
        with report.LoadWatch() as load:
            res = run(args, host)
        res["loadavg_samples"] = load.samples
        res["loadavg_every"] = load.every
        res["seconds"] = time.monotonic() - started
        text = write_outputs(res, Path(args.out), args.stem)
        print(text)
        log(f"wrote {args.out}/{args.stem}.md, .json and -fill.png in {res['seconds']:.0f} s")
        if args.docs and not update_doc(text):
            log(f"docs/BENCHMARKS.md has no {FIGURES_BEGIN} ... {FIGURES_END} section; left alone")
        rc = 1 if sum(sum(f.values()) for f in res["failures"].values()) else 0
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        rc = 130
    except (RuntimeError, OSError) as exc:
        log(f"error: {exc}")
        rc = 2
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        left = host.cleanup()
        if left:
            log("left behind (remove by hand): " + ", ".join(left))
            rc = rc or 2
    return rc


if __name__ == "__main__":
    sys.exit(main())
