"""The launcher's link to libpython: none at exec time, the bundle's own loaded for a cold call.

A warm call never runs Python in the launcher, so the launcher is linked against libc alone
(conf/pyapi.h) and a cold call dlopen()s the libpython beside it. These tests read the ELF
dynamic section the loader acts on, and run a bundle whose libpython is missing: the cold call
must fail as a CNI error, not with the loader's bare message.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest


def _dynamic(binary: Path) -> str:
    return subprocess.run(["readelf", "-d", str(binary)], capture_output=True, text=True, check=True,
                          timeout=30).stdout


def test_the_launcher_needs_libc_only_and_its_bundle_carries_libpython(bin_dir):
    launcher = Path(bin_dir, "loopback").resolve()
    needed = [line.split("[", 1)[1].rstrip("]") for line in _dynamic(launcher).splitlines()
              if "(NEEDED)" in line]
    assert needed == ["libc.so.6"], needed
    # the cold path's dlopen finds it beside the launcher, by the soname build.sh compiled in
    assert list((launcher.parent / "_internal").glob("libpython3*.so*")), launcher


@pytest.mark.root
def test_a_cold_call_without_libpython_fails_as_a_cni_error(bin_dir, tmp_path):
    """The bundle copied as links, all but libpython: the call answers code 999 and exits 1."""
    real = Path(bin_dir, "loopback").resolve()
    bundle = tmp_path / "bundle"
    internal = bundle / "_internal"
    internal.mkdir(parents=True)
    for entry in (real.parent / "_internal").iterdir():
        if not entry.name.startswith("libpython"):
            (internal / entry.name).symlink_to(entry)
    launcher = bundle / "pycni"
    launcher.write_bytes(real.read_bytes())
    launcher.chmod(0o755)
    (bundle / "loopback").symlink_to("pycni")
    env = {"CNI_COMMAND": "VERSION", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYCNI_WARM_SOCKET": "off"}
    proc = subprocess.run([str(bundle / "loopback")], env=env, capture_output=True, timeout=60,
                          input=b'{"cniVersion": "1.1.0", "name": "n", "type": "loopback"}')
    assert proc.returncode == 1, proc
    answer = json.loads(proc.stdout)
    assert answer["code"] == 999, answer
    assert answer["msg"] == "pycni launcher: cannot load libpython", answer
    assert "libpython" in answer["details"], answer
    assert b"Traceback" not in proc.stderr, proc.stderr
