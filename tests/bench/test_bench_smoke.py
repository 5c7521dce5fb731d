"""The benchmark runs end to end in quick mode: tables, plot, no failed call, nothing left behind.

No latency is asserted here (the figures of a quick run on a busy machine mean little); the targets
are reported by the full run, ``sudo python3 -m bench``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NETNS_DIR = Path("/var/run/netns")
TIMEOUT = 300


def _left_by(run_id: str) -> list[str]:
    """Namespaces, links and the work directory of bench run ``run_id`` still on the host."""
    names = [f"netns {p.name}" for p in NETNS_DIR.glob(f"pcbench-{run_id}-*")] if NETNS_DIR.is_dir() else []
    names += [f"link {p.name}" for p in Path("/sys/class/net").glob(f"pcbb{run_id}*")]
    names += [f"dir {p}" for p in Path(os.environ.get("TMPDIR", "/tmp")).glob(f"pycni-benchrun-{run_id}-*")]
    return names


@pytest.mark.root
def test_quick_run_produces_tables_and_plot(bin_dir: Path, ref_bin_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--ours", str(bin_dir), "--ref", str(ref_bin_dir),
         "--out", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    report = f"exit {proc.returncode}\nstdout:\n{proc.stdout[-6000:]}\nstderr:\n{proc.stderr[-6000:]}"
    assert proc.returncode == 0, report

    res = json.loads((out / "quick.json").read_text())
    assert res["failures"] == {"ours": {}, "ref": {}}, report
    assert res["errors"] == [], report
    assert res["available"]["ours"]["loopback"], "our loopback did not answer VERSION"
    assert all(res["available"]["ref"].values()), res["available"]["ref"]
    for chain, sides in res["latency"].items():
        for verb in ("ADD", "CHECK", "DEL"):
            # kind's list (the ptp chain) is at 0.3.1, which has no CHECK
            want = 0 if verb == "CHECK" and "ptp" in chain else res["config"]["iterations"]
            if not (verb == "CHECK" and "portmap" in chain):  # the reference's CHECK is skipped there
                assert len(sides["ref"][verb]) == want, (chain, verb)
            if all(res["available"]["ours"][t] for t in chain.split("+")):
                assert len(sides["ours"][verb]) == want, (chain, verb)
    assert res["floor"]["samples"]["empty bundle"], "the empty bundle was not timed"
    assert set(res["concurrency"]["levels"]) == {"1", "8", "32"}
    fill = res["fill"]["sides"]["ref"]
    assert None not in fill["ADD"] and None not in fill["DEL"]
    assert res["memory"]["peak_kib"]["ref"]["bridge"] > 0

    md = (out / "quick.md").read_text()
    for heading in ("One pod at a time", "Start-up floors", "Pods at once", "Filling a /24",
                    "Peak memory", "Targets"):
        assert heading in md, heading
    assert "| `bridge+host-local` | ADD |" in md
    assert "| `loopback+ptp+host-local+portmap` | ADD |" in md
    assert (out / "quick-fill.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    assert _left_by(res["run_id"]) == [], "the bench left these behind"
