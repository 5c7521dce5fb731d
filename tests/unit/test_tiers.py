"""Collection marks the heavy tests itself (helpers.tiers): the quick tier holds no test of the
node folders and none that uses a namespace, the bundle or libcni, and keeps the pure ones."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _quick_ids() -> list[str]:
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "not heavy",
                           "-p", "no:cacheprovider", "-o", "addopts=", "tests"],
                          cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return [line for line in proc.stdout.splitlines() if "::" in line]


def test_the_quick_tier_leaves_out_what_needs_root_namespaces_or_the_bundle():
    ids = _quick_ids()
    folders = {i.split("/")[1] for i in ids}
    assert not folders & {"e2e", "vm", "freshroot", "bench"}, sorted(folders)
    # each of these uses one heavy fixture: netns, ns, bin_dir, cnitool, ref_bin_dir
    for heavy in ("tests/hostile/test_corpus.py::", "tests/net/test_route.py::", "tests/ops/test_cli.py::",
                  "tests/contract/test_libcni.py::", "tests/loopback/test_loopback.py::"):
        assert not [i for i in ids if i.startswith(heavy)], heavy
    assert not [i for i in ids if i.startswith("tests/net/test_imports.py::test_setns_without_ctypes")]
    for quick in ("tests/contract/test_request.py::", "tests/properties/test_result.py::",
                  "tests/ipam/test_config.py::", "tests/bridge/test_unit.py::"):
        assert [i for i in ids if i.startswith(quick)], quick
