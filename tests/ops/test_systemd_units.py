"""conf/systemd: the service and timer that run `pycni gc` every 10 minutes, as the docs install them."""

from __future__ import annotations

import configparser
import json
import shutil
import subprocess
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parents[2] / "conf" / "systemd"
INSTALLED = "/opt/cni/bin/pycni"


def _unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # keys are case-sensitive in systemd
    parser.read(UNITS / name)
    return parser


def test_the_timer_runs_the_service_every_ten_minutes():
    timer = _unit("pycni-gc.timer")
    assert timer["Timer"]["OnUnitActiveSec"] == "10min" and timer["Timer"]["OnBootSec"] == "10min"
    assert timer["Install"]["WantedBy"] == "timers.target"
    service = _unit("pycni-gc.service")
    assert service["Service"]["Type"] == "oneshot"
    assert service["Service"]["ExecStart"].split() == [INSTALLED, "gc"]


def test_systemd_accepts_the_units(tmp_path: Path, bin_dir: Path):
    """`systemd-analyze verify`, with ExecStart pointed at the built bundle (it checks the command)."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze missing (Debian package systemd)")
    for name in ("pycni-gc.service", "pycni-gc.timer"):
        text = (UNITS / name).read_text().replace(INSTALLED, str(bin_dir / "pycni"))
        (tmp_path / name).write_text(text)
    proc = subprocess.run(["systemd-analyze", "verify", "--man=no", str(tmp_path / "pycni-gc.timer"),
                           str(tmp_path / "pycni-gc.service")], capture_output=True, text=True, timeout=60)
    problems = [line for line in (proc.stdout + proc.stderr).splitlines() if "pycni-gc" in line]
    assert proc.returncode == 0 and not problems, proc.stdout + proc.stderr


def test_the_service_command_fails_without_a_runtime(tmp_path: Path, bin_dir: Path):
    """What the unit runs exits non-zero (the unit fails, visibly) when the runtime cannot be asked."""
    argv = [str(bin_dir / "pycni"), "gc", "--conf-dir", str(tmp_path), "--cri-endpoint",
            f"unix://{tmp_path}/none.sock"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and "nothing was collected" in proc.stderr, proc
    assert "Traceback" not in proc.stderr
    proc = subprocess.run([*argv, "--json"], capture_output=True, text=True, timeout=60)
    report = json.loads(proc.stdout)
    assert proc.returncode == 1 and report["error"].startswith("nothing was collected: cannot reach")
    assert report["runtime"]["reachable"] is False and report["networks"] == []
