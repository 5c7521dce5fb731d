"""Start-up cost: the netlink layer must not drag in heavy standard modules.

Every plugin call is a new process, so a module pulled in here is paid on every ADD and
DEL.  Checked by module set, not by timing: `socket` (enum), `typing`, `dataclasses`
(inspect), `contextlib` and `subprocess` cost milliseconds each; `ctypes` is loaded only
when a namespace is actually entered.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .conftest import REPO

HEAVY = {
    "socket",
    "typing",
    "dataclasses",
    "inspect",
    "enum",
    "contextlib",
    "subprocess",
    "ctypes",
    "re",
    "json",
}


def _modules_after(code: str) -> set[str]:
    prog = f"import sys; sys.path.insert(0, {str(REPO)!r}); before = set(sys.modules); {code}; "
    prog += "new = sorted(set(sys.modules) - before); import json; print(json.dumps(new))"
    out = subprocess.run([sys.executable, "-I", "-S", "-c", prog], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout)) - {
        "json",
        "json.decoder",
        "json.scanner",
        "json.encoder",
        "_json",
        "re",
    }


def test_importing_the_layer_stays_light() -> None:
    modules = ("cni.net.link", "cni.net.addr", "cni.net.route", "cni.net.bridge_port", "cni.net.tc",
               "cni.net.netns", "cni.net.sysctl")
    loaded = _modules_after("import " + ", ".join(modules))
    assert set(modules) <= loaded
    assert "ipaddress" not in loaded  # only listing routes (CHECK, portmap) imports it, when called
    assert not loaded & HEAVY, sorted(loaded & HEAVY)


def test_package_init_imports_nothing() -> None:
    loaded = _modules_after("import cni.net")
    assert {m for m in loaded if m.startswith("cni.")} == {"cni.net"}
    assert "ipaddress" not in loaded and "_socket" not in loaded


@pytest.mark.root
def test_setns_without_ctypes() -> None:
    """Entering a namespace uses os.setns (3.12+) or the C module build.sh compiles, never ctypes."""
    loaded = _modules_after("from cni.net import netns; h = netns.open_handle(None); h.close()")
    assert "ctypes" not in loaded
    loaded = _modules_after("from cni.net import netns\nwith netns.entered('/proc/self/ns/net'): pass")
    assert "ctypes" not in loaded
    assert "cni.net._setns" in loaded or sys.version_info >= (3, 12)
