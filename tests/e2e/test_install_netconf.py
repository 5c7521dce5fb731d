"""conf/install-netconf.sh: what a kind user runs on each node to write the config list."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from nodesetup import EXAMPLE, INSTALL_NETCONF

pytestmark = pytest.mark.skipif(not EXAMPLE.exists(), reason=f"{EXAMPLE.name} is not written yet")


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("MTU", "IP_MASQ", "CNI_VERSION", "PYCNI_PORTMAP", "PYCNI_NETCONF_TEMPLATE",
                          "PYCNI_NETCONF_NAME")}
    return subprocess.run(["sh", str(INSTALL_NETCONF), *args], capture_output=True, text=True,
                          timeout=30, env={**clean, **(env or {})})


def _plugins(conf: dict, kind: str) -> list[dict]:
    return [p for p in conf["plugins"] if p["type"] == kind]


def test_renders_the_example_for_a_node(tmp_path: Path) -> None:
    proc = _run("10.244.7.0/24", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    written = tmp_path / "00-pycni.conflist"
    assert proc.stdout.strip() == str(written)
    assert sorted(p.name for p in tmp_path.iterdir()) == [written.name], "a temporary file was left"
    assert oct(written.stat().st_mode & 0o777) == "0o644"
    conf = json.loads(written.read_text())
    example = json.loads(EXAMPLE.read_text())
    assert conf["name"] == example["name"] and conf["cniVersion"] == example["cniVersion"]
    (bridge,) = _plugins(conf, "bridge")
    assert bridge["ipam"]["subnet"] == "10.244.7.0/24"
    assert bridge["ipam"].get("gateway", "10.244.7.1") == "10.244.7.1"
    assert bridge["hairpinMode"] is True
    assert _plugins(conf, "bandwidth") == [{"type": "bandwidth", "capabilities": {"bandwidth": True}}]
    assert _plugins(conf, "portmap") == [{"type": "portmap", "capabilities": {"portMappings": True}}]
    # Everything else in the example's plugins is kept as it was, in order.
    kept = [p["type"] for p in conf["plugins"] if p["type"] not in ("bandwidth", "portmap")]
    assert kept == [p["type"] for p in example["plugins"] if p["type"] not in ("bandwidth", "portmap")]


def test_overrides(tmp_path: Path) -> None:
    proc = _run("10.200.0.0/16", str(tmp_path),
                env={"MTU": "1400", "IP_MASQ": "true", "CNI_VERSION": "1.0.0", "PYCNI_PORTMAP": "0",
                     "PYCNI_NETCONF_NAME": "01-node.conflist"})
    assert proc.returncode == 0, proc.stderr
    conf = json.loads((tmp_path / "01-node.conflist").read_text())
    (bridge,) = _plugins(conf, "bridge")
    assert conf["cniVersion"] == "1.0.0"
    assert bridge["ipMasq"] is True and bridge["mtu"] == 1400
    assert bridge["ipam"]["subnet"] == "10.200.0.0/16"
    assert _plugins(conf, "portmap") == []


def test_rewrite_replaces_the_file_atomically(tmp_path: Path) -> None:
    """A second run (a node re-provisioned) replaces the file by rename: a reader holding the old
    file keeps the old content, and no half-written version is ever visible under the name."""
    assert _run("10.244.1.0/24", str(tmp_path)).returncode == 0
    target = tmp_path / "00-pycni.conflist"
    with target.open() as old:
        before_inode = os.fstat(old.fileno()).st_ino
        assert _run("10.244.2.0/24", str(tmp_path)).returncode == 0
        assert "10.244.1.0/24" in old.read()
    assert target.stat().st_ino != before_inode
    assert "10.244.2.0/24" in target.read_text()


def test_warns_when_another_file_sorts_first(tmp_path: Path) -> None:
    (tmp_path / "10-kindnet.conflist").write_text("{}")
    assert "warning" not in _run("10.244.1.0/24", str(tmp_path)).stderr
    (tmp_path / "00-aaa.conf").write_text("{}")
    proc = _run("10.244.1.0/24", str(tmp_path))
    assert proc.returncode == 0
    assert "00-aaa.conf sorts before 00-pycni.conflist" in proc.stderr


@pytest.mark.parametrize(("args", "env", "message"), [
    (("10.244.1.1/24",), {}, "host bits set"),
    (("fd00::/64",), {}, "not an IPv4 CIDR"),
    (("10.244.1.0/31",), {}, "not within"),
    (("10.244.300.0/24",), {}, "out of range"),
    ((), {}, "usage"),
    (("10.244.1.0/24",), {"MTU": "20"}, "MTU"),
    (("10.244.1.0/24",), {"IP_MASQ": "yes"}, "IP_MASQ"),
    (("10.244.1.0/24",), {"CNI_VERSION": "0.2.0"}, "CNI_VERSION"),
    (("10.244.1.0/24",), {"PYCNI_NETCONF_NAME": "x.conf"}, ".conflist"),
    (("10.244.1.0/24",), {"PYCNI_NETCONF_TEMPLATE": "/nonexistent"}, "not found"),
])
def test_rejects_bad_input_and_writes_nothing(tmp_path: Path, args, env, message) -> None:
    out_dir = tmp_path / "net.d"
    proc = _run(*args, *([str(out_dir)] if args else []), env=env)
    assert proc.returncode != 0
    assert message in proc.stderr
    assert not out_dir.exists() or list(out_dir.iterdir()) == []


def test_refuses_templates_it_cannot_render(tmp_path: Path) -> None:
    template = tmp_path / "t.conflist"
    two = {"cniVersion": "1.0.0", "name": "t", "plugins": [{"type": "bridge", "ipam": {
        "type": "host-local", "ranges": [[{"subnet": "10.1.0.0/24"}], [{"subnet": "10.2.0.0/24"}]]}}]}
    template.write_text(json.dumps(two, indent=2))
    proc = _run("10.244.1.0/24", str(tmp_path / "out"), env={"PYCNI_NETCONF_TEMPLATE": str(template)})
    assert proc.returncode != 0 and "expected exactly one" in proc.stderr
    bounded = {"cniVersion": "1.0.0", "name": "t", "plugins": [{"type": "bridge", "ipam": {
        "type": "host-local", "subnet": "10.1.0.0/24", "rangeStart": "10.1.0.10"}}]}
    template.write_text(json.dumps(bounded, indent=2))
    proc = _run("10.244.1.0/24", str(tmp_path / "out"), env={"PYCNI_NETCONF_TEMPLATE": str(template)})
    assert proc.returncode != 0 and "rangeStart" in proc.stderr
