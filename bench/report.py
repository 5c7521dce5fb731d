"""Turn the raw samples into the figures: tables (Markdown, also printed), targets, the plot."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .floor import pyinstaller_version
from .scenarios import BRIDGE, LABELS, LOOPBACK, SHAPED, SIDES, WARM

REPO = Path(__file__).resolve().parent.parent
MIB = 1024
# The targets: (key, description). Checked and reported, never asserted.
TARGETS = (
    ("chain_vs_ref", f"the example chain's ADD (`{LOOPBACK}` + `{SHAPED}`, medians) ≤ 2.5× the reference"),
    ("add_vs_ref", f"`{BRIDGE}` ADD median ≤ 2× the reference"),
    ("loopback_vs_ref", f"`{LOOPBACK}` ADD median ≤ 4× the reference"),
    ("bandwidth_vs_ref", f"`bandwidth` ADD median (in `{SHAPED}`) ≤ 3× the reference"),
    ("floor_vs_python", "our empty-program floor ≤ 1.1× `python3 -I -S` printing {}"),
    ("add_vs_floor", f"`{BRIDGE}` ADD median ≤ 1.5× our empty-program floor"),
    ("del_vs_ref", f"`{BRIDGE}` DEL median ≤ 3× the reference"),
    ("concurrent", "32 concurrent ADDs: no failure, p99 < 1 s"),
    ("flat", "filling a /24: median of the last 50 ADDs ≤ 1.2× the first 50"),
    ("memory", "peak RSS of one plugin process ≤ 40 MiB"),
)


def quantile(xs: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), NaN when empty."""
    if not xs:
        return float("nan")
    s = sorted(xs)
    pos = (len(s) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def summary(xs: list[float]) -> dict[str, float]:
    return {"n": len(xs), "median": quantile(xs, 0.5), "p90": quantile(xs, 0.9), "p99": quantile(xs, 0.99)}


def ms(x: float | None) -> str:
    return "–" if x is None or x != x else f"{x * 1000:.1f}"


def mib(kib: int | None) -> str:
    return f"{kib / MIB:.1f} MiB" if kib else "–"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or a != a or b != b or b == 0:
        return "–"
    return f"{a / b:.2f}×"


def _cmd(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def machine() -> dict[str, str]:
    """What the figures depend on, printed beside them."""
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    distro = ""
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                distro = line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    commit = _cmd(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"])
    return {
        "nproc": str(os.cpu_count()),
        "cpu": cpu or platform.processor(),
        "kernel": platform.release(),
        "distro": distro,
        "python": sys.version.split()[0],
        "pyinstaller": pyinstaller_version(),
        "commit": commit or "?",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "loadavg": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
    }


def load1() -> float:
    """The 1-minute load average now."""
    return float(Path("/proc/loadavg").read_text().split()[0])


class LoadWatch:
    """The 1-minute load average every ``every`` seconds while the run lasts: on a shared machine the
    start and end figures alone can miss the busy middle."""

    def __init__(self, every: float = 5.0) -> None:
        self.every = every
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            self.samples.append(load1())
            if self._stop.wait(self.every):
                return

    def __enter__(self) -> LoadWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _shown(path: str) -> str:
    """A path inside the repository relative to it (README readers have their own checkout)."""
    p = Path(path)
    return str(p.relative_to(REPO)) if p.is_relative_to(REPO) else path


def _median_of(samples: list[float | None]) -> float:
    xs = [x for x in samples if x is not None]
    return statistics.median(xs) if xs else float("nan")


def evaluate(res: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each target: the measured value, its limit and whether it is met (None: not measured)."""
    out: dict[str, dict[str, Any]] = {}
    lat = res.get("latency", {}).get(BRIDGE, {})

    def med(side: str, verb: str) -> float:
        return quantile(lat.get(side, {}).get(verb, []), 0.5)

    def put(key: str, value: float, limit: float, text: str) -> None:
        met = None if value != value else value <= limit
        out[key] = {"value": value, "limit": limit, "text": text, "met": met}

    def versus(key: str, ours: float, ref: float, limit: float) -> None:
        put(key, ours / ref if ref == ref and ref else float("nan"), limit,
            f"{ratio(ours, ref)} ({ms(ours)} vs {ms(ref)} ms)")

    latency = res.get("latency", {})
    chain = {side: sum(quantile(latency.get(c, {}).get(side, {}).get("ADD", []), 0.5)
                       for c in (LOOPBACK, SHAPED)) for side in SIDES}
    versus("chain_vs_ref", chain["ours"], chain["ref"], 2.5)
    a_o, a_r, d_o, d_r = med("ours", "ADD"), med("ref", "ADD"), med("ours", "DEL"), med("ref", "DEL")
    versus("add_vs_ref", a_o, a_r, 2.0)
    loop = latency.get(LOOPBACK, {})
    versus("loopback_vs_ref", quantile(loop.get("ours", {}).get("ADD", []), 0.5),
           quantile(loop.get("ref", {}).get("ADD", []), 0.5), 4.0)
    shaped = res.get("per_plugin", {}).get(SHAPED, {})
    versus("bandwidth_vs_ref", quantile(shaped.get("ours", {}).get("ADD bandwidth", []), 0.5),
           quantile(shaped.get("ref", {}).get("ADD bandwidth", []), 0.5), 3.0)
    floors = res.get("floor", {}).get("samples", {})
    floor = quantile(floors.get("empty bundle", []), 0.5)
    versus("floor_vs_python", floor, quantile(floors.get("python3 -I -S printing {}", []), 0.5), 1.1)
    put("add_vs_floor", a_o / floor if floor == floor and floor else float("nan"), 1.5,
        f"{ratio(a_o, floor)} ({ms(a_o)} vs {ms(floor)} ms)")
    put("del_vs_ref", d_o / d_r if d_r else float("nan"), 3.0,
        f"{ratio(d_o, d_r)} ({ms(d_o)} vs {ms(d_r)} ms)")
    c32 = res.get("concurrency", {}).get("levels", {}).get("32", {}).get("ours", {}).get("ADD")
    if c32 is not None:
        p99 = quantile(c32["latencies"], 0.99)
        value = p99 if c32["failures"] == 0 else float("inf")
        put("concurrent", value, 1.0, f"{c32['failures']} failures, p99 {ms(p99)} ms")
    else:
        put("concurrent", float("nan"), 1.0, "not measured")
    fill = res.get("fill", {}).get("sides", {}).get("ours", {}).get("ADD")
    if fill:
        k = max(1, min(50, len(fill) // 2))
        first, last = _median_of(fill[:k]), _median_of(fill[-k:])
        put("flat", last / first if first == first and first else float("nan"), 1.2,
            f"{ratio(last, first)} (last {k}: {ms(last)} ms, first {k}: {ms(first)} ms)")
    else:
        put("flat", float("nan"), 1.2, "not measured")
    peaks = res.get("memory", {}).get("peak_kib", {}).get("ours", {})
    if peaks:
        worst = max(peaks, key=lambda p: peaks[p])
        put("memory", peaks[worst] / MIB, 40.0, f"{peaks[worst] / MIB:.1f} MiB (`{worst}`)")
    else:
        put("memory", float("nan"), 40.0, "not measured")
    return out


def reference(res: dict[str, Any]) -> str:
    """What ran as the reference, in its own words (results written before the bench asked it hold
    only the Debian package the machine had)."""
    return res["config"].get("ref_about") or res["machine"].get("reference", "?")


def ours_sides(res: dict[str, Any]) -> list[str]:
    """Our sides of a run, cold first: ["ours"] or ["ours", "warm"]."""
    return [s for s in res.get("sides", SIDES) if s != "ref"]


def side_label(res: dict[str, Any], side: str) -> str:
    """A side's name in the tables: "ours" alone, "ours cold" beside "ours warm"."""
    if side == "ours" and WARM in res.get("sides", ()):
        return "ours cold"
    return LABELS.get(side, side)


def _warm_line(res: dict[str, Any]) -> str:
    w = res["warm"]
    return (f"Warm path: `pycni serve` (pid {w['pid']}) from the same bundle, started for the run; its "
            f"memory after the run {mib(w.get('rss_kib'))} resident ({mib(w.get('anon_kib'))} of it "
            f"anonymous), at most {mib(w.get('hwm_kib'))}; it handed {w['served']} calls to a child "
            f"and sent {w['refused']} back to run cold. Cold calls ran with `PYCNI_WARM_SOCKET=off`.")


def markdown(res: dict[str, Any]) -> str:
    """The whole report as Markdown (also what the terminal shows)."""
    m = res["machine"]
    cfg = res["config"]
    lines: list[str] = []
    add = lines.append
    ours = ours_sides(res)
    cols = [*ours, "ref"]
    add(f"Run of {m['date']}{' (quick mode: few iterations, not figures to quote)' if cfg['quick'] else ''}: "
        f"{m['nproc']} CPUs ({m['cpu']}), kernel {m['kernel']}, {m['distro']}, Python {m['python']}, "
        f"PyInstaller {m['pyinstaller']}, reference {reference(res)} from `{_shown(cfg['ref'])}`, "
        f"pycni {m['commit']}; "
        f"load average {m['loadavg']} at the start, {res.get('loadavg_end', '?')} at the end.")
    add("")
    if res.get("warm"):
        add(_warm_line(res))
        add("")
    load = res.get("loadavg_samples") or []
    if load:
        add(f"Load average (1 min) during the run, every {res.get('loadavg_every', 5):g} s: median "
            f"{statistics.median(load):.1f}, from {min(load):.1f} to {max(load):.1f} on {m['nproc']} CPUs.")
        add("")
    try:
        busy = (statistics.median(load) if load else float(m["loadavg"].split()[0])) > float(m["nproc"])
    except (ValueError, IndexError):
        busy = False
    if busy:
        add("The load average was above the CPU count: other work shared the machine, so absolute times "
            "are inflated; the interleaved ratios suffer less, but a busy scheduler adds about the same wait "
            "to every process, which pulls the ratios towards 1: a quiet machine favours the Go plugins.")
        add("")
    unavailable = {s: [t for t, ok in res["available"][s].items() if not ok] for s in cols}
    for s in cols:
        if unavailable[s]:
            add(f"Not measured for {s}: {', '.join(unavailable[s])} (VERSION did not answer).")
            add("")
    add(f"Sources: ours `{_shown(cfg['ours'])}`, reference `{_shown(cfg['ref'])}` ({reference(res)}); "
        f"lists at cniVersion {cfg.get('cni_version', '1.0.0')}. Times in ms; a chain's "
        "time is the sum of its plugin processes, spawn to exit.")
    add("")

    lat = res.get("latency", {})
    if lat:
        add(f"**One pod at a time** ({cfg['iterations']} pods per chain and side):")
        add("")
        add("| chain | verb | " + " | ".join(f"{side_label(res, s)} median | p90 | p99" for s in cols) + " | "
            + " | ".join(f"{side_label(res, s)}/ref" for s in ours) + " |")
        add("| --- | --- | " + " | ".join(["---:"] * (3 * len(cols) + len(ours))) + " |")
        for chain, sides in lat.items():
            for verb in ("ADD", "CHECK", "DEL"):
                q = {s: summary(sides.get(s, {}).get(verb, [])) for s in cols}
                cells = [f"{ms(q[s]['median'])} | {ms(q[s]['p90'])} | {ms(q[s]['p99'])}" for s in cols]
                cells += [ratio(q[s]["median"], q["ref"]["median"]) for s in ours]
                add(f"| `{chain}` | {verb} | " + " | ".join(cells) + " |")
        add("")
        pp = res.get("per_plugin", {})
        rows = []
        for chain, sides in pp.items():
            if "+" not in chain:
                continue
            for key in sorted(set().union(*(sides.get(s, {}) for s in cols))):
                mid = {s: quantile(sides.get(s, {}).get(key, []), 0.5) for s in cols}
                cells = [ms(mid[s]) for s in cols] + [ratio(mid[s], mid["ref"]) for s in ours]
                rows.append(f"| `{chain}` | {key} | " + " | ".join(cells) + " |")
        if rows:
            add("Per plugin process (median; `bridge` includes the `host-local` it delegates to):")
            add("")
            add("| chain | verb and plugin | " + " | ".join(side_label(res, s) for s in cols) + " | "
                + " | ".join(f"{side_label(res, s)}/ref" for s in ours) + " |")
            add("| --- | --- | " + " | ".join(["---:"] * (len(cols) + len(ours))) + " |")
            lines.extend(rows)
            add("")

    floor = res.get("floor", {})
    if floor.get("samples"):
        add("**Start-up floors** (the same iterations, interleaved with the pods):")
        add("")
        add("| program | median | p90 | p99 | peak RSS |")
        add("| --- | ---: | ---: | ---: | ---: |")
        floor_rss = res.get("memory", {}).get("floor_peak_kib", {})
        for label, xs in floor["samples"].items():
            st = summary(xs)
            add(f"| {label} | {ms(st['median'])} | {ms(st['p90'])} | {ms(st['p99'])} | "
                f"{mib(floor_rss.get(label))} |")
        add("")
        add(f"The empty bundle is started through the bundle's launcher (conf/launcher.c) and collected "
            f"with build.sh's PyInstaller options ({floor.get('origin', '?')}): "
            f"`{' '.join(floor.get('options', [])).replace(str(REPO), '.')}`.")
        add("")

    conc = res.get("concurrency", {})
    if conc.get("levels"):
        add(f"**Pods at once** (`{conc['chain']}`; total = wall time of one round, median over rounds):")
        add("")
        add("| pods | verb | " + " | ".join(
            f"{side_label(res, s)} total | {side_label(res, s) if s != 'ref' else 'reference'} p99"
            f"{' per pod' if s != 'ref' else ''} | {side_label(res, s)} failures" for s in cols) + " | "
            + " | ".join(f"total {side_label(res, s)}/ref" for s in ours) + " |")
        add("| ---: | --- | " + " | ".join(["---:"] * (3 * len(cols) + len(ours))) + " |")
        for level, sides in conc["levels"].items():
            for verb in ("ADD", "DEL"):
                x = {s: sides.get(s, {}).get(verb) for s in cols}
                cells = []
                for s in cols:
                    if x[s] is None:
                        cells += ["–", "–", "–"]
                    else:
                        cells += [ms(quantile(x[s]["totals"], 0.5)), ms(quantile(x[s]["latencies"], 0.99)),
                                  str(x[s]["failures"])]
                ref_total = quantile(x["ref"]["totals"], 0.5) if x["ref"] else None
                cells += [ratio(quantile(x[s]["totals"], 0.5) if x[s] else None, ref_total) for s in ours]
                add(f"| {level} | {verb} | {' | '.join(cells)} |")
        add("")

    fill = res.get("fill", {})
    if fill.get("sides"):
        n = fill["pods"]
        k = max(1, min(50, n // 2))
        add(f"**Filling a /24** one pod at a time ({n} pods, `{fill['chain']}`), then emptying it "
            f"(median of the first and last {k}; plot: `{res.get('png_name', '')}`):")
        add("")
        add(f"| side | verb | first {k} | last {k} | last/first |")
        add("| --- | --- | ---: | ---: | ---: |")
        series = [(side_label(res, side), verb, xs) for side, verbs in fill["sides"].items()
                for verb, xs in verbs.items()]
        series += [("empty bundle (the machine's drift)", verb, xs)
                 for verb, xs in (fill.get("floor") or {}).items() if any(x is not None for x in xs)]
        for side, verb, xs in series:
            a, b = _median_of(xs[:k]), _median_of(xs[-k:])
            add(f"| {side} | {verb} | {ms(a)} | {ms(b)} | {ratio(b, a)} |")
        add("")

    mem = res.get("memory", {})
    peaks = mem.get("peak_kib", {})
    if peaks:
        add(f"**Peak memory** of one plugin process (largest `ru_maxrss` over {cfg['memory_cycles']} pod "
            f"cycles of every chain, read through {mem['method']}; `bridge` counts the `host-local` it "
            "runs):")
        add("")
        add("| plugin | " + " | ".join(side_label(res, s) for s in cols) + " | "
            + " | ".join(f"{side_label(res, s)}/ref" for s in ours) + " |")
        add("| --- | " + " | ".join(["---:"] * (len(cols) + len(ours))) + " |")
        for plugin in sorted(set().union(*(peaks.get(s, {}) for s in cols))):
            p = {s: peaks.get(s, {}).get(plugin) for s in cols}
            add(f"| `{plugin}` | " + " | ".join(mib(p[s]) for s in cols) + " | "
                + " | ".join(ratio(p[s], p["ref"]) for s in ours) + " |")
        add("")
        if WARM in cols:
            add("On the warm path the process a runtime runs is the launcher alone (its peak above); the "
                "call runs in a spare child the warm process forked ahead of it, which has copied the "
                "pages it may write (about 9 MiB of its own; two wait) and shares the rest (the warm "
                "process's memory is given at the top).")
            add("")

    add("**Targets** (reported, not enforced):")
    add("")
    add("| target | measured | met |")
    add("| --- | --- | :---: |")
    for key, text in TARGETS:
        t = res["targets"].get(key, {"text": "not measured", "met": None})
        add(f"| {text} | {t['text']} | {'yes' if t['met'] else 'n/a' if t['met'] is None else '**no**'} |")
    add("")
    fails = res["failures"]
    add("Failures: " + ", ".join(f"{side_label(res, s)} {sum(fails.get(s, {}).values())}" for s in cols)
        + " (of " + ", ".join(str(res["calls"].get(s, 0)) for s in cols) + " plugin processes).")
    for e in res.get("errors", [])[:10]:
        add(f"- `{e[:300]}`")
    return "\n".join(lines) + "\n"


def plot(res: dict[str, Any], path: Path) -> bool:
    """Latency against pod index while filling and emptying the /24, both sides; False if no data."""
    fill = res.get("fill", {})
    if not fill.get("sides"):
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    colors = {"ours": "tab:blue", WARM: "tab:green", "ref": "tab:orange"}
    labels = {"ours": "pycni", WARM: "pycni warm", "ref": "reference (Go)"}
    k = 9
    for ax, verb in zip(axes, ("ADD", "DEL"), strict=True):
        series = [(labels[side], colors[side], verbs[verb], True) for side, verbs in fill["sides"].items()]
        floor = (fill.get("floor") or {}).get(verb) or []
        if any(x is not None for x in floor):
            series.append(("our empty-program floor", "gray", floor, False))
        for label, color, values, dots in series:
            xs = [i for i, v in enumerate(values) if v is not None]
            ys = [values[i] * 1000 for i in xs]
            if dots:
                ax.plot(xs, ys, ".", markersize=3, color=color, alpha=0.5)
            smooth = [statistics.median(ys[max(0, j - k // 2): j + k // 2 + 1]) for j in range(len(ys))]
            ax.plot(xs, smooth, "-" if dots else "--", color=color, linewidth=1.5 if dots else 1,
                    label=f"{label} (running median of {k})")
        ax.set_ylabel(f"{verb} latency (ms)")
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper right", fontsize=8)
    axes[1].set_xlabel("pod index (filling a /24, then emptying it in the same order)")
    m = res["machine"]
    fig.suptitle(f"{fill['chain']}: latency per pod — {m['nproc']} CPUs, {m['cpu']}, {m['date']}",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
