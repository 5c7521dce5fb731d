"""The VLAN tests, run in a guest kernel that has bridge VLAN filtering and 802.1Q (see conftest)."""

from __future__ import annotations

import pytest

from .conftest import parse_summary


@pytest.mark.root
def test_vlan_tests_pass_in_guest_kernel(vlan_guest_run):
    run = vlan_guest_run
    counts = parse_summary(run.output)
    print(f"guest: {counts} in {run.seconds:.0f} s")
    assert not run.timed_out, run.describe()
    assert run.exit_status == 0, run.describe()
    assert counts.get("passed", 0) > 0, run.describe()
    assert counts.get("skipped", 0) == 0 and counts.get("failed", 0) == 0, run.describe()
    assert counts.get("errors", 0) == 0, run.describe()


@pytest.mark.parametrize("output, counts", [
    ("..s\n=== short test summary ===\n12 passed, 1 skipped, 300 deselected in 4.21s\n",
     {"passed": 12, "skipped": 1, "deselected": 300}),
    ("==== 2 failed, 3 passed, 1 error in 0.50s ====", {"failed": 2, "passed": 3, "errors": 1}),
    ("===== 5 passed in 1.00s =====\n", {"passed": 5}),
    ("no tests ran in 0.01s", {}),
    ("Traceback (most recent call last):\n", {}),
])
def test_parse_summary(output, counts):
    assert parse_summary(output) == counts
