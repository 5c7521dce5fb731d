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

from bench.scenarios import CNI_VERSION, about, newest_common

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
    """Without --ref the reference is v1.9.1 from realnode, and the report says so."""
    out = tmp_path / "results"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--path", "cold", "--ours", str(bin_dir),
         "--out", str(out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    report = f"exit {proc.returncode}\nstdout:\n{proc.stdout[-6000:]}\nstderr:\n{proc.stderr[-6000:]}"
    assert proc.returncode == 0, report

    res = json.loads((out / "quick.json").read_text())
    assert res["config"]["ref"] == str(ref_bin_dir.resolve()), res["config"]
    assert res["config"]["ref_about"] == "CNI plugins v1.9.1", res["config"]
    assert res["config"]["cni_version"] == "1.1.0", "both sides speak 1.1.0"
    assert res["failures"] == {"ours": {}, "ref": {}}, report
    assert res["errors"] == [], report
    assert res["available"]["ours"]["loopback"], "our loopback did not answer VERSION"
    assert all(res["available"]["ref"].values()), res["available"]["ref"]
    for chain, sides in res["latency"].items():
        for verb in ("ADD", "CHECK", "DEL"):
            # kind's list (the ptp chain) is at 0.3.1, which has no CHECK
            want = 0 if verb == "CHECK" and "ptp" in chain else res["config"]["iterations"]
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
    first = md.splitlines()[0]
    assert f"reference CNI plugins v1.9.1 from `{ref_bin_dir.resolve()}`," in first, first
    assert res["sides"] == ["ours", "ref"] and "warm" not in res, "--path cold measures no warm path"
    assert "| chain | verb | ours median | p90 | p99 | reference median | p90 | p99 | ours/ref |" in md
    assert (out / "quick-fill.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    assert _left_by(res["run_id"]) == [], "the bench left these behind"


def test_lists_take_the_newest_version_every_plugin_speaks() -> None:
    v111 = frozenset({"0.3.1", "0.4.0", "1.0.0"})
    v191 = v111 | {"1.1.0"}
    assert newest_common({"ours": {"bridge": v191}, "ref": {"bridge": v191, "ptp": frozenset()}}) == "1.1.0"
    assert newest_common({"ours": {"bridge": v191}, "ref": {"bridge": v111}}) == "1.0.0"
    assert newest_common({"ours": {"bridge": frozenset({"0.10.0", "0.4.0"})},
                          "ref": {"bridge": frozenset({"0.10.0", "0.4.0"})}}) == "0.10.0"
    assert newest_common({"ours": {}, "ref": {}}) == CNI_VERSION


def test_each_side_is_named_by_its_own_version_line(bin_dir: Path, ref_bin_dir: Path,
                                                    debian_ref_bin_dir: Path) -> None:
    """The report's name for a plugin directory comes from its plugins, not from what dpkg has."""
    assert about(str(ref_bin_dir), str(ref_bin_dir)) == "CNI plugins v1.9.1"
    debian = about(str(debian_ref_bin_dir), str(debian_ref_bin_dir))
    assert debian.startswith("CNI plugins version unknown (Debian package containernetworking-plugins "
                             "1.1.1"), debian
    ours = about(str(bin_dir), str(bin_dir))
    assert ours.startswith("CNI plugins (pycni "), ours


@pytest.mark.root
def test_quick_run_of_both_paths(bin_dir: Path, ref_bin_dir: Path, tmp_path: Path) -> None:
    """--path both: the warm path (pycni serve from the same bundle) beside the cold one and the
    reference, every call handed over, the warm process stopped and nothing left behind."""
    out = tmp_path / "results"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CNI_")}
    argv = [sys.executable, "-m", "bench", "--quick", "--path", "both", "--no-floor", "--levels", "8",
            "--fill", "4", "--iterations", "3", "--ours", str(bin_dir), "--ref", str(ref_bin_dir),
            "--out", str(out)]
    proc = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    report = f"exit {proc.returncode}\nstdout:\n{proc.stdout[-6000:]}\nstderr:\n{proc.stderr[-6000:]}"
    assert proc.returncode == 0, report
    res = json.loads((out / "quick.json").read_text())
    assert res["sides"] == ["ours", "warm", "ref"]
    assert res["failures"] == {"ours": {}, "warm": {}, "ref": {}}, report
    warm = res["warm"]
    assert warm["served"] >= res["calls"]["warm"] > 0 and warm["refused"] == 0, warm
    assert warm["rss_kib"] > 0 and warm["hwm_kib"] >= warm["rss_kib"], warm
    assert not Path(f"/proc/{warm['pid']}").exists(), "the warm process outlived the run"
    for chain, sides in res["latency"].items():
        assert len(sides["warm"]["ADD"]) == 3, chain
    assert res["memory"]["peak_kib"]["warm"]["bridge"] > 0
    md = (out / "quick.md").read_text()
    assert "| chain | verb | ours cold median | p90 | p99 | ours warm median |" in md
    assert _left_by(res["run_id"]) == [], "the bench left these behind"
