"""`./build.sh install DIR` and `./build.sh onefile`, as an operator uses them.

Installation goes to a temporary directory standing in for /opt/cni/bin: other plugins there
stay untouched, every plugin name ends up a symlink into one bundle, the bundle that was in use
stays for calls still running from it, older ones go, and the installed plugins answer.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers import run_plugin

from cni.version import VERSION

REPO = Path(__file__).resolve().parent.parent
TYPES = ("bridge", "host-local", "bandwidth", "loopback", "ptp", "portmap")


def _install(dest: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(["bash", str(REPO / "build.sh"), "install", str(dest)], cwd=REPO,
                          capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _bundles(dest: Path) -> set[str]:
    return {p.name for p in dest.iterdir() if p.name.startswith(".pycni-")}


def test_install_keeps_other_plugins_and_switches_names(tmp_path, bin_dir):
    dest = tmp_path / "bin"
    dest.mkdir()
    (dest / "macvlan").write_text("#!/bin/sh\necho macvlan\n")  # a plugin pycni does not serve
    (dest / "macvlan").chmod(0o755)
    (dest / "bridge").write_text("#!/bin/sh\necho old bridge\n")  # a previous plugin of that name
    (dest / "bridge").chmod(0o755)
    _install(dest)
    assert (dest / "macvlan").read_text() == "#!/bin/sh\necho macvlan\n"
    targets = {os.readlink(dest / t) for t in TYPES}
    assert len(targets) == 1 and next(iter(targets)).endswith("/pycni")
    assert _bundles(dest) == {next(iter(targets)).split("/")[0]}
    assert not [p for p in dest.iterdir() if p.name.endswith(".pycni-new")]
    for t in TYPES:
        out = run_plugin(dest / t, "VERSION", {"cniVersion": "1.0.0"}).check()
        assert "1.1.0" in out.json["supportedVersions"]
    # the operator's command is installed beside the plugins, into the same bundle
    assert os.readlink(dest / "pycni") == next(iter(targets))
    version = subprocess.run([dest / "pycni", "--version"], capture_output=True, text=True, timeout=30)
    assert version.returncode == 0 and version.stdout.startswith(f"pycni {VERSION} (CNI spec versions ")


def test_reinstall_keeps_the_bundle_in_use_and_drops_older_ones(tmp_path, bin_dir):
    dest = tmp_path / "bin"
    _install(dest)
    current = os.readlink(dest / "bridge").split("/")[0]
    # Two older bundles and an interrupted install, as earlier versions would have left them;
    # the names still point at `current` and then at an "older" one the new install replaces.
    for old in (".pycni-000000000001", ".pycni-000000000002", ".pycni-tmp.abcdef"):
        shutil.copytree(dest / current, dest / old, symlinks=True)
    for t in TYPES:
        os.unlink(dest / t)
        os.symlink(".pycni-000000000002/pycni", dest / t)
    _install(dest)
    assert {os.readlink(dest / t) for t in TYPES} == {f"{current}/pycni"}
    assert _bundles(dest) == {current, ".pycni-000000000002"}
    _install(dest)  # the same bundle again: names unchanged, the one replaced before now goes
    assert _bundles(dest) == {current}


@pytest.mark.root
def test_onefile_loopback_works(tmp_path, netns):
    proc = subprocess.run(["bash", str(REPO / "build.sh"), "onefile", "loopback"], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    exe = REPO / "dist" / "onefile" / "loopback"
    assert exe.is_file() and not exe.is_symlink()
    ns = netns()
    out = run_plugin(exe, "ADD", {"cniVersion": "1.0.0", "name": "one", "type": "loopback"}, netns=ns.path)
    out.check()
    assert json.loads(out.stdout)["interfaces"][0]["name"] == "lo"
    flags = ns.exec("ip", "-j", "link", "show", "lo")
    assert "UP" in json.loads(flags.stdout)[0]["flags"]


def test_install_restarts_a_running_warm_process(tmp_path, bin_dir):
    """The warm process serves its own bundle's calls only: an install restarts pycni-warm.service
    when it runs (here a stand-in `systemctl` that says it does and records what it is asked)."""
    fake = tmp_path / "fakebin"
    fake.mkdir()
    asked = tmp_path / "asked"
    (fake / "systemctl").write_text(f'#!/bin/sh\necho "$*" >> {asked}\nexit 0\n')
    (fake / "systemctl").chmod(0o755)
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}"}
    out = _install(tmp_path / "bin", env)
    assert asked.read_text().splitlines() == ["is-active --quiet pycni-warm.service",
                                              "restart pycni-warm.service"]
    assert "restarted pycni-warm.service" in out
    (fake / "systemctl").write_text(f'#!/bin/sh\necho "$*" >> {asked}\nexit 3\n')  # inactive
    asked.unlink()
    out = _install(tmp_path / "bin", env)
    assert asked.read_text().splitlines() == ["is-active --quiet pycni-warm.service"]
    assert "restarted" not in out
