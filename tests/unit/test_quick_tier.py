"""The quick tier (``pytest -m "not heavy"``, helpers.tiers) holds what it promises: run by an
unprivileged user, every test in it passes (none skipped for want of root, none failing for want of
a namespace or the bundle), within a minute of CPU."""

from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOBODY = ("--reuid=65534", "--regid=65534", "--clear-groups")
CPU_BOUND = 60.0  # seconds of CPU (user + system) for the whole tier
WALL_BOUND = 900  # a hang guard only: wall time depends on the machine's load
MIN_TESTS = 500   # the tier is the bulk of the pure tests, not an accidentally empty selection


def _runs_as_nobody(argv: list[str], env: dict[str, str]) -> bool:
    """The interpreter runs as nobody, and so does its ``sys.executable`` (tests start it again)."""
    code = ("import subprocess, sys; import pytest, hypothesis; "
            "subprocess.run([sys.executable, '-c', 'import pytest, hypothesis'], check=True)")
    probe = subprocess.run(["setpriv", *NOBODY, *argv, "-c", code], env=env,
                           capture_output=True, timeout=120, check=False)
    return probe.returncode == 0


def _interpreter_for_nobody(env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """This interpreter, or (when it lives where an unprivileged user cannot reach it, as under
    /root) the system's interpreter of the same version with this one's packages on the path."""
    if _runs_as_nobody([sys.executable], env):
        return [sys.executable], env
    system = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
    with_packages = dict(env, PYTHONPATH=sysconfig.get_paths()["purelib"])
    if Path(system).exists() and _runs_as_nobody([system], with_packages):
        return [system], with_packages
    pytest.skip("no Python interpreter with pytest and hypothesis an unprivileged user can run")


@pytest.mark.root
def test_quick_tier_passes_unprivileged_within_a_minute_of_cpu():
    home = tempfile.mkdtemp(prefix="pycni-quick-")
    os.chmod(home, 0o777)
    env = {"PATH": "/usr/bin:/bin", "HOME": home, "PYTHONDONTWRITEBYTECODE": "1", "LC_ALL": "C.UTF-8"}
    python, env = _interpreter_for_nobody(env)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        proc = subprocess.run(["setpriv", *NOBODY, *python, "-m", "pytest", "-m", "not heavy", "-q",
                               "-p", "no:cacheprovider", "-o", "addopts=", str(REPO / "tests")],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=WALL_BOUND,
                              check=False)
    finally:
        subprocess.run(["rm", "-rf", home], check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-2000:]
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (\w+)", summary)}
    assert not {"failed", "error", "errors", "skipped", "xfailed", "xpassed"} & set(counts), summary
    assert counts.get("passed", 0) >= MIN_TESTS, summary
    assert cpu < CPU_BOUND, f"the quick tier took {cpu:.1f} s of CPU: {summary}"
