"""The soak in short: the example chain under random SIGKILLs through libcni 1.3.0 (cnidrive), ours
and the reference v1.9.1 in one run.

Ours must keep every rule: no failure of a call nobody killed (STATUS and GC included), no address
held by two live pods, no reservation out of step between waves (GCs with the live pods valid run
between them), nothing left after the final DEL or the final GC. The reference's figures are only
reported (it leaks the masquerade chains of a killed ADD: see README "Reliability").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import realnode
from helpers.warm import PATHS

REPO = Path(__file__).resolve().parents[2]
NETNS_DIR = Path("/var/run/netns")


@pytest.mark.root
@pytest.mark.parametrize("launch_path", PATHS)
def test_short_soak_keeps_every_rule(bin_dir: Path, ref_bin_dir: Path, tmp_path: Path,
                                     launch_path: str) -> None:
    """On both launch paths: warm, a killed call is a killed launcher whose child must die with it."""
    cnidrive = realnode.require(realnode.CNIDRIVE)
    out = tmp_path / "results"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "soak", "--operations", "80", "--slots", "2", "--pods", "3",
         "--kill-share", "0.3", "--seed", "15", "--gc-every", "2", "--ours", str(bin_dir),
         "--ref", str(ref_bin_dir), "--cnidrive", str(cnidrive), "--out", str(out), "--stem", "short",
         *(["--warm"] if launch_path == "warm" else [])],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    report = f"exit {proc.returncode}\nstdout:\n{proc.stdout[-6000:]}\nstderr:\n{proc.stderr[-4000:]}"
    assert proc.returncode == 0, report
    res = json.loads((out / "short.json").read_text())
    ours, ref = res["sides"]["ours"], res["sides"]["ref"]
    for side in (ours, ref):
        assert side["operations"] >= 80, report
        assert sum(side["kills"].values()) > 0, f"no call was killed: {report}"
        assert side["duplicates"] == 0, report
        assert side["ops"]["STATUS"] == side["waves"] - 1, "STATUS after every wave but the final check"
        assert side["ops"]["GC"] >= 2, "GC between waves and once at the end"
    assert ours["unkilled_failures"] == 0 and ours["wave_faults"] == 0 and ours["leftovers"] == [], report
    assert ours["after_gc"] == [], report
    assert res["cni_version"] == "1.1.0" and "libcni v1.3.0" in res["libcni"]
    assert res["chain"][:2] == ["loopback", "bridge"], res["chain"]
    if launch_path == "warm":
        assert res["warm"]["served"] >= 80 and res["warm"]["refused"] == 0, res["warm"]
    else:
        assert res["warm"] is None
    assert "| operations (ADD + DEL through libcni) |" in (out / "short.md").read_text()
    run = res["run_id"]
    assert not list(NETNS_DIR.glob(f"pcbench-{run}-*")), "the soak left namespaces"
