"""README's first command on a new machine: `sudo ./build.sh demo` on a fresh Debian 12 root.

The root has only what a minimal server install has (git, python3, sudo, ca-certificates: Debian's
own Python, which refuses pip installs, no compiler, no pip, no venv). The demo must install what
building needs by itself, build, and pass; a second run must install nothing. This is what fails
when an install step goes missing. The root reaches the registries as this machine does.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import debroot

from .conftest import UNREACHABLE

REPO = Path(__file__).resolve().parents[2]
NEWCOMER = ("ca-certificates", "git", "python3", "sudo")
DEMO_TIMEOUT = 1800
PASSED = "demo finished: all steps passed, the host is as before"
TEST_ONLY = {"containerd", "golang-go", "qemu-system-x86", "containernetworking-plugins"}
INSTALL_MARKS = ("installing Debian packages", "making the build environment", "installing into ")


def _project_files() -> list[str]:
    """The files of this checkout as a clone would have them (tracked and new, not ignored)."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                         capture_output=True, timeout=60, check=True).stdout
    return sorted({name for name in out.decode().split("\0") if name and (REPO / name).exists()})


def _copy_project(dest: Path) -> None:
    for name in _project_files():
        src, target = REPO / name, dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target, follow_symlinks=False)


def _pypi_reachable() -> bool:
    proc = subprocess.run([sys.executable, "-m", "pip", "index", "versions", "pip"], capture_output=True,
                          timeout=120)
    return proc.returncode == 0


@pytest.mark.root
def test_demo_on_a_fresh_debian12_root(scratch_root):
    if not _pypi_reachable():
        pytest.skip(f"{UNREACHABLE} (pip cannot reach its index)")
    root = scratch_root(NEWCOMER)
    assert not (root / "usr/bin/gcc").exists() and not (root / "usr/bin/pip3").exists()
    debroot.copy_registry_config(root)
    _copy_project(root / "root/project")

    first = debroot.run_in_root(root, ["sudo", "./build.sh", "demo"], cwd="/root/project",
                                timeout=DEMO_TIMEOUT)
    log = first.stdout + first.stderr
    assert first.returncode == 0, log[-6000:]
    assert PASSED in first.stdout
    installed = {pkg for line in log.splitlines() if "installing Debian packages:" in line
                 for pkg in line.split(":", 2)[-1].split()}
    assert {"gcc", "python3-dev", "python3-venv"} <= installed  # what building needs, by itself
    assert not installed & TEST_ONLY, "the demo must not install the test suite's packages"
    assert (root / "root/project/.venv/bin/pyinstaller").exists()
    assert not list((root / "usr/lib/python3/dist-packages").glob("PyInstaller*"))

    second = debroot.run_in_root(root, ["sudo", "./build.sh", "demo"], cwd="/root/project",
                                 timeout=DEMO_TIMEOUT)
    log = second.stdout + second.stderr
    assert second.returncode == 0, log[-6000:]
    assert PASSED in second.stdout
    assert not [line for line in log.splitlines() if any(mark in line for mark in INSTALL_MARKS)], log[-3000:]
