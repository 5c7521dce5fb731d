"""conf/systemd: the service and timer that run `pycni gc` every 10 minutes, and the socket and service
of the warm process (`pycni serve`), as the docs install them."""

from __future__ import annotations

import configparser
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parent.parent / "conf" / "systemd"
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
    names = ("pycni-gc.service", "pycni-gc.timer", "pycni-warm.socket", "pycni-warm.service")
    for name in names:
        text = (UNITS / name).read_text().replace(INSTALLED, str(bin_dir / "pycni"))
        (tmp_path / name).write_text(text)
    proc = subprocess.run(["systemd-analyze", "verify", "--man=no", *(str(tmp_path / n) for n in names)],
                          capture_output=True, text=True, timeout=60)
    problems = [line for line in (proc.stdout + proc.stderr).splitlines() if "pycni-" in line]
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


def test_the_warm_units_activate_pycni_serve_on_a_root_only_socket():
    sock, service = _unit("pycni-warm.socket"), _unit("pycni-warm.service")
    assert sock["Socket"]["ListenStream"] == "/run/pycni/warm.sock"
    assert (sock["Socket"]["SocketMode"], sock["Socket"]["DirectoryMode"]) == ("0600", "0700")
    assert sock["Install"]["WantedBy"] == "sockets.target"
    assert service["Service"]["ExecStart"].split() == [INSTALLED, "serve"]
    assert service["Service"]["KillMode"] == "process", "a restart must not kill the calls in flight"
    sandboxing = {"PrivateTmp", "PrivateNetwork", "ProtectSystem", "PrivateMounts", "RootDirectory",
                  "NetworkNamespacePath", "PrivateDevices", "ProtectHome"}
    assert not sandboxing & set(service["Service"]), "a namespace of its own: every call would run cold"


@pytest.mark.root
def test_socket_activation_serves_calls(tmp_path: Path, bin_dir: Path):
    """What the socket unit does, by systemd-socket-activate: the listener passed as fd 3 with
    LISTEN_FDS/LISTEN_PID; a plugin call is served warm through it."""
    tool = shutil.which("systemd-socket-activate")
    if tool is None:
        pytest.skip("systemd-socket-activate missing (Debian package systemd)")
    directory = tmp_path / "run"
    directory.mkdir(mode=0o700)
    path = directory / "warm.sock"
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([tool, "-l", str(path), str(bin_dir / "pycni"), "serve", "--verbose"],
                                stdout=out, stderr=out, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        env = {"CNI_COMMAND": "VERSION", "PYCNI_WARM_SOCKET": str(path), "PATH": "/usr/bin:/bin"}
        out = subprocess.run([str(bin_dir / "loopback")], input=b'{"cniVersion": "1.0.0"}', env=env,
                             capture_output=True, timeout=60)
        assert out.returncode == 0 and "1.1.0" in json.loads(out.stdout)["supportedVersions"], out
        text = log.read_text()
        assert "serving on the socket systemd passed" in text and ": child " in text, text
    finally:
        proc.terminate()
        proc.wait(timeout=10)
