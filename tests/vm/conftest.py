"""The VLAN tests in a guest kernel, for hosts whose kernel has no bridge VLAN filtering or 802.1Q.

``vlan_guest_run`` (session) boots Debian's kernel once (see ``guest.py``) and runs the VLAN tests
of tests/bridge/test_bridge.py and tests/net/test_link.py there with a copy of our plugins; on a host
that has both features it skips, since those tests then ran directly. The kernel package is fetched
into a temporary directory removed afterwards; ``PYCNI_VM_CACHE=DIR`` keeps it in DIR for next time.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import realnode

from . import guest

REPO = Path(__file__).resolve().parents[2]
VLAN_TESTS = ("tests/bridge/test_bridge.py", "tests/net/test_link.py")
VLAN_SELECTION = "vlan or Vlan or VLAN"
HOST_HAS_VLANS = "host kernel has bridge VLAN filtering; the VLAN tests ran directly"
GUEST_TIMEOUT = 1200  # boot, the tests, power-off (23 tests took 614 s emulated on a busy 2-core host); the
# tests get 30 s less


def host_vlan_features() -> dict[str, bool]:
    """Whether this kernel makes a VLAN-filtering bridge and an 802.1Q device (in a scratch
    namespace, as the skips in the VLAN tests find out)."""
    ns = f"pycni-vmprobe-{uuid.uuid4().hex[:8]}"

    def ip(*args: str) -> bool:
        return subprocess.run(["ip", "-n", ns, *args], capture_output=True, timeout=30).returncode == 0

    subprocess.run(["ip", "netns", "add", ns], capture_output=True, timeout=30, check=True)
    try:
        filtering = ip("link", "add", "name", "pvbr", "type", "bridge", "vlan_filtering", "1")
        vlan_dev = (ip("link", "add", "name", "pvp0", "type", "veth", "peer", "name", "pvp1")
                    and ip("link", "add", "link", "pvp0", "name", "pvp0.5", "type", "vlan", "id", "5"))
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
    return {"bridge VLAN filtering": filtering, "802.1Q VLAN devices": vlan_dev}


def parse_summary(output: str) -> dict[str, int]:
    """pytest's closing counts (``12 passed, 3 deselected in 4.2s``) as {"passed": 12, ...}."""
    for line in reversed(output.strip().splitlines()):
        line = line.strip("= ")
        if re.search(r"\bin [\d.]+s\b", line) and re.match(r"\d+ \w+", line):
            counts = {word: int(n) for n, word in re.findall(r"(\d+) (\w+)", line.split(" in ")[0])}
            if "error" in counts:
                counts["errors"] = counts.pop("error")
            return counts
        if line.startswith("no tests ran"):
            return {}
    return {}


def copy_plugins(bin_dir: Path, dest: Path) -> Path:
    """Copy the plugin directory (symlinks into a PyInstaller bundle included) to ``dest/bin``, so a
    rebuild of dist/ while the guest runs cannot change what it tests."""
    out = dest / "bin"
    out.mkdir(parents=True)
    bundles: dict[Path, str] = {}
    for entry in sorted(bin_dir.iterdir()):
        target = entry.resolve()
        bundle = target.parent
        if entry.is_symlink() and bundle != bin_dir.resolve() and (bundle / "_internal").is_dir():
            if bundle not in bundles:
                bundles[bundle] = bundle.name
                shutil.copytree(bundle, dest / bundle.name, symlinks=True)
            (out / entry.name).symlink_to(f"../{bundles[bundle]}/{target.name}")
        elif target.is_file():
            shutil.copy2(target, out / entry.name)
    return out


def copy_sources(dest: Path) -> None:
    """The repository's sources and tests, for the guest: its /tmp and /run are its own, so a
    checkout there (as CI's may be) would not be visible through the shared root."""
    shutil.copytree(REPO, dest, symlinks=True, ignore=shutil.ignore_patterns(
        ".git", ".venv", "dist", "build", "__pycache__", ".pytest_cache", ".ruff_cache"))


def guest_python(share: Path) -> str:
    """The interpreter the guest runs pytest with: this one (the project's .venv, say) where the
    guest sees it through the shared root, else a copy of its environment in the share (a checkout
    under /tmp or /run, which the guest has its own of)."""
    prefix = Path(sys.prefix)
    hidden = prefix.is_relative_to("/tmp") or prefix.is_relative_to("/run")
    if prefix == Path(sys.base_prefix) or not hidden:
        return sys.executable
    shutil.copytree(prefix, share / "venv", symlinks=True)
    return f"{guest.GUEST_SHARE}/venv/bin/{Path(sys.executable).name}"


def vlan_script(python: str, reference: Path) -> str:
    """The guest's part: our plugins copied from the share into its memory, the modules the tests
    need, then pytest on the VLAN tests from a copy of this repository in the share. ``reference``
    is the unpacked real-node directory (the reference plugins v1.9.1 the VLAN tests compare
    with), which the guest reads through the shared root."""
    pytest_argv = [python, "-m", "pytest", "-p", "no:cacheprovider", *VLAN_TESTS, "-k", VLAN_SELECTION,
                   "-q", "-ra"]
    return "\n".join([
        f"export PATH={shlex.quote(os.environ.get('PATH', '/usr/bin:/bin'))}",
        f"cp -a {guest.GUEST_SHARE}/plugins /tmp/pycni-plugins",
        "export PYCNI_BIN=/tmp/pycni-plugins/bin PYTHONDONTWRITEBYTECODE=1",
        f"export PYCNI_REALNODE={shlex.quote(str(reference))}",
        "modprobe -a bridge 8021q veth",
        f"cd {guest.GUEST_SHARE}/repo",
        shlex.join(pytest_argv),
    ])


@pytest.fixture(scope="session")
def vlan_guest_run(bin_dir: Path) -> Iterator[guest.GuestRun]:
    if os.geteuid() != 0:
        pytest.skip("needs root (namespaces on the host, qemu with /dev/kvm)")
    features = host_vlan_features()
    if all(features.values()):
        pytest.skip(HOST_HAS_VLANS)
    missing = guest.missing_requirements()
    if missing:
        pytest.skip("cannot boot a guest kernel: " + "; ".join(missing))
    plugins = realnode.reference_plugins()  # fails under CI, skips elsewhere, when missing
    if plugins.resolve().is_relative_to("/tmp") or plugins.resolve().is_relative_to("/run"):
        pytest.skip(f"{plugins}: the guest has its own /tmp and /run and cannot see the reference there")
    work = Path(tempfile.mkdtemp(prefix="pycni-vm-"))
    try:
        try:
            kernel = guest.fetch_kernel(Path(os.environ.get("PYCNI_VM_CACHE") or work / "kernel"))
        except guest.GuestError as exc:
            pytest.fail(f"cannot get {guest.KERNEL_PACKAGE}: {exc}")
        copy_plugins(bin_dir, work / "plugins")
        copy_sources(work / "repo")
        script = vlan_script(guest_python(work), plugins.parent)
        yield guest.run_in_guest(kernel, script, share=work, timeout=GUEST_TIMEOUT)
    finally:
        shutil.rmtree(work, ignore_errors=True)
