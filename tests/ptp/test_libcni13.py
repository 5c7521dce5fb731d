"""kind's list driven by libcni 1.3.0 (the libcni containerd 2.3.4 runs, through `cnidrive`), at
kindnetd's 0.3.1 and at 1.1.0: ours gives the reference v1.9.1's results, and STATUS, CHECK, GC
and DEL of the whole list work as containerd 2.x calls them."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from helpers import link_exists, realnode, unique_name, unique_subnet_v6
from helpers import unique_subnet_v4 as v4

from .test_differential import _ipam_files, _shape, host_veth, kind_ipam

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def cnidrive() -> Path:
    return realnode.require(realnode.CNIDRIVE)


def _drive(cnidrive: Path, verb: str, name: str, arg: str, cni_path: Path, conf_dir: Path,
           cache: Path, cid: str) -> subprocess.CompletedProcess:
    env = {"PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "CNI_PATH": str(cni_path),
           "NETCONFPATH": str(conf_dir), "CNI_CACHE_DIR": str(cache), "CNI_CONTAINERID": cid,
           "CNI_IFNAME": "eth0"}
    return subprocess.run([str(cnidrive), verb, name, arg], env=env, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("version", ["0.3.1", "1.1.0"])
def test_kind_list_through_libcni_1_3(version, cnidrive, ours, ref, netns, state_dir):
    subnets = (v4(), unique_subnet_v6(64))
    name = unique_name("pcptpk", 8)
    results = {}
    for impl, d in (("ours", ours), ("ref", ref)):
        data_dir = state_dir / f"ipam-{impl}"
        ipam = {**kind_ipam(*subnets), "dataDir": str(data_dir)}
        conf_dir = state_dir / f"netconf-{impl}"
        conf_dir.mkdir()
        (conf_dir / "10-kindnet.conflist").write_text(json.dumps({
            "cniVersion": version, "name": name, "plugins": [
                {"type": "ptp", "ipMasq": False, "mtu": 1500, "ipam": ipam},
                {"type": "portmap", "capabilities": {"portMappings": True}}]}))
        cache = state_dir / f"cache-{impl}"
        ns = netns()
        cid = f"pcptpk-{impl}"

        def drive(verb: str, arg: str = ns.path, d=d, conf_dir=conf_dir, cache=cache, cid=cid):
            return _drive(cnidrive, verb, name, arg, d, conf_dir, cache, cid)

        if version == "1.1.0":
            assert drive("status").returncode == 0, drive("status").stderr
        add = drive("add")
        assert add.returncode == 0, add.stderr
        result = json.loads(add.stdout)
        results[impl] = _shape(result)
        host = host_veth(result, ns)
        if version == "1.1.0":
            check = drive("check")
            assert check.returncode == 0, check.stderr
        if impl == "ours" and version == "1.1.0":  # GC keeps the live attachment, then frees it
            assert drive("gc", f"{cid}/eth0").returncode == 0
            assert len(_ipam_files(data_dir, name)) == 4  # two addresses, two last_reserved_ip
            gc = drive("gc", "")
            assert gc.returncode == 0, gc.stderr
            assert set(_ipam_files(data_dir, name)) == {"last_reserved_ip.0", "last_reserved_ip.1"}
        delete = drive("del")
        assert delete.returncode == 0, delete.stderr
        assert not link_exists(host) and not link_exists("eth0", ns)
        assert set(_ipam_files(data_dir, name)) <= {"last_reserved_ip.0", "last_reserved_ip.1"}
    assert results["ours"] == results["ref"]
    assert results["ours"]["cniVersion"] == version
