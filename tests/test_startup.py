"""Start-up budget: what a plugin call imports decides its latency, so guard it.

Each plugin module is imported in a fresh interpreter; modules that are excluded from the
bundle, or that cost milliseconds for nothing on every call, must not be among its imports.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cni.plugins import MODULES  # noqa: E402

# Excluded from the bundle by build.sh, or too slow to import on every call.
FORBIDDEN = {"inspect", "dataclasses", "typing", "pathlib", "bz2", "lzma", "traceback",
             "tempfile", "shutil", "jsonschema", "pyroute2", "filelock", "asyncio", "logging", "json", "re",
             "enum", "subprocess", "socket", "contextlib"}


def imported_by(module: str) -> set[str]:
    code = f"import sys; sys.path.insert(0, {str(REPO)!r}); import {module}"
    proc = subprocess.run([sys.executable, "-I", "-S", "-X", "importtime", "-c", code],
                          capture_output=True, text=True, check=True)
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


@pytest.mark.parametrize("plugin_type", sorted(MODULES))
def test_plugin_imports_stay_lean(plugin_type):
    names = imported_by(MODULES[plugin_type])
    assert MODULES[plugin_type] in names
    top_level = {n.split(".")[0] for n in names} | names
    assert not FORBIDDEN & top_level, f"{plugin_type} imports {sorted(FORBIDDEN & top_level)}"


def test_entry_and_contract_import_lean():
    names = set()
    for module in ("cni.__main__", "cni.contract.dispatch", "cni.contract.delegate"):
        names |= imported_by(module)
    assert "cni.contract.dispatch" in names
    assert not FORBIDDEN & names
