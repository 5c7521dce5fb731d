"""IPAM delegation: our own host-local run in-process answers exactly as its executable would.

No root needed: host-local only touches its data directory.
"""

from __future__ import annotations

import json

import pytest

from cni.contract import delegate
from cni.contract.errors import CNIError
from cni.contract.request import finish, parse_env, parse_stdin
from cni.contract.result import Result
from cni.plugins import load


def _request(tmp_path, version: str, routes: list[dict]):
    config = {"cniVersion": version, "name": "dlg", "type": "bridge",
              "ipam": {"type": "host-local", "subnet": "10.61.0.0/24", "routes": routes,
                       "dataDir": str(tmp_path)}}
    env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/var/run/netns/x",
           "CNI_IFNAME": "eth0", "CNI_PATH": str(tmp_path)}
    (tmp_path / "host-local").write_text("#!/bin/sh\nexit 99\n")  # found on CNI_PATH, never run
    (tmp_path / "host-local").chmod(0o755)
    req = parse_env(env)
    stdin = json.dumps(config).encode()
    finish(req, parse_stdin(req, stdin), frozenset({"MAC"}))
    req.local_plugins = load  # as the entry point hands its registry to the contract
    return req


@pytest.fixture
def in_process(monkeypatch):
    monkeypatch.setattr(delegate, "_is_own_bundle", lambda executable: True)


@pytest.mark.parametrize(("version", "want"), [
    ("0.2.0", ["0.0.0.0/0"]),  # a 0.2.0 result files routes under ip4/ip6: no IPv6 address, no ::/0
    ("1.0.0", ["0.0.0.0/0", "::/0"]),
])
def test_in_process_result_is_the_printed_one_read_back(tmp_path, in_process, version, want):
    req = _request(tmp_path, version, [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}])
    result = delegate.ipam(req, "ADD")
    assert isinstance(result, Result)
    assert [str(r.dst) for r in result.routes] == want
    assert [str(ip.address) for ip in result.ips] == ["10.61.0.2/24"]
    assert (tmp_path / "dlg" / "10.61.0.2").read_bytes() == b"c1\r\neth0"
    assert delegate.ipam(req, "DEL") is None
    assert not (tmp_path / "dlg" / "10.61.0.2").exists()


def test_in_process_delegate_is_the_registered_plugin():
    assert load("host-local").TYPE == "host-local"


def _executable(directory, name: str) -> str:
    path = directory / name
    path.write_text("#!/bin/sh\nexit 99\n")
    path.chmod(0o755)
    return str(path)


@pytest.mark.parametrize("ipam_type", ["bridge", "ptp", "bandwidth", "portmap", "loopback"])
def test_an_interface_plugin_of_ours_is_no_ipam_whoever_built_it(tmp_path, ipam_type):
    """Named by ipam.type, our interface plugins are refused (7) even as foreign executables."""
    req = _request(tmp_path, "1.0.0", [])
    _executable(tmp_path, ipam_type)
    with pytest.raises(CNIError) as exc:
        delegate.find_ipam(ipam_type, req)
    assert exc.value.code == 7 and "not an IPAM plugin" in exc.value.msg


def test_the_pycni_command_is_no_ipam(tmp_path, in_process):
    """Our bundle under a name it serves no plugin as (`pycni`, a symlink on CNI_PATH)."""
    req = _request(tmp_path, "1.0.0", [])
    _executable(tmp_path, "pycni")
    with pytest.raises(CNIError) as exc:
        delegate.find_ipam("pycni", req)
    assert exc.value.code == 7 and "pycni" in exc.value.msg
    assert delegate.find_ipam("host-local", req) == str(tmp_path / "host-local")


def test_an_ipam_type_of_another_suite_is_found_as_it_is(tmp_path):
    req = _request(tmp_path, "1.0.0", [])
    dhcp = _executable(tmp_path, "dhcp")
    assert delegate.find_ipam("dhcp", req) == dhcp
    assert delegate.find_ipam("host-local", req) == str(tmp_path / "host-local")
