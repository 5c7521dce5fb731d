"""`./build.sh release`: the tarball an operator carries to a node, and the node it must run on.

The archive is laid out like the reference plugins' release (``tar -C /opt/cni/bin -xzf`` gives
working plugins) with ``pycni-install.sh`` for the atomic install. On a minimal Debian 12 root
with no Python at all, as kind's node image is, the unpacked release installs, every plugin
answers VERSION, and the example list goes through ADD, CHECK and DEL driven by libcni.
"""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

import pytest
from helpers import debroot, ip_json

from cni.plugins import MODULES
from cni.version import VERSION

REPO = Path(__file__).resolve().parents[2]
PLUGINS = tuple(sorted(MODULES))
NAMES = (*PLUGINS, "pycni")
EXAMPLE = REPO / "conf" / "examples" / "10-pycni-cbr0.conflist"


@pytest.fixture(scope="module")
def release(bin_dir) -> Path:
    proc = subprocess.run(["bash", str(REPO / "build.sh"), "release"], cwd=REPO, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    archives = sorted((REPO / "dist").glob(f"pycni-{VERSION}-linux-*.tgz"))
    assert len(archives) == 1, archives
    return archives[0]


def test_archive_is_laid_out_like_the_reference_release(release):
    assert subprocess.run(["sha256sum", "-c", release.name + ".sha256"], cwd=release.parent,
                          capture_output=True, timeout=60).returncode == 0
    with tarfile.open(release) as tar:
        members = {m.name.removeprefix("./"): m for m in tar.getmembers()}
    top = {name for name in members if name not in ("", ".") and "/" not in name}
    bundles = {name for name in top if name.startswith(".pycni-")}
    assert len(bundles) == 1
    bundle = bundles.pop()
    assert top == {*NAMES, "pycni-install.sh", bundle}
    for name in NAMES:
        assert members[name].issym() and members[name].linkname == f"{bundle}/pycni"
    assert members[f"{bundle}/pycni"].isfile() and members[f"{bundle}/pycni"].mode & 0o111
    assert members["pycni-install.sh"].mode & 0o111
    assert all(m.uid == 0 and m.gid == 0 for m in members.values())


def _in_root(root: Path, *argv: str, **kw) -> subprocess.CompletedProcess:
    proc = debroot.run_in_root(root, argv, **kw)
    assert proc.returncode == 0, f"{argv} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def _cnitool(root: Path, verb: str, pod, node) -> dict | None:
    proc = _in_root(root, "/usr/local/bin/cnitool", verb, "pycni-cbr0", pod.path, netns=node.name,
                    share_netns_dir=True, env={"CNI_PATH": "/opt/cni/bin", "NETCONFPATH": "/etc/cni/net.d",
                                               "CNI_IFNAME": "eth0", "CNI_CACHE_DIR": "/var/lib/cni"})
    return json.loads(proc.stdout) if proc.stdout.strip() else None


@pytest.mark.root
def test_release_runs_on_a_debian12_root_without_python(release, scratch_root, cnitool, netns):
    root = scratch_root()
    assert not list((root / "usr/bin").glob("python*")), "the node root must have no Python"
    (root / "root/release.tgz").write_bytes(release.read_bytes())
    (root / "opt/cni/bin").mkdir(parents=True)
    (root / "opt/cni/bin/macvlan").write_text("#!/bin/sh\necho another plugin\n")

    # The operator's two ways: unpack straight into a plugin directory, or unpack and run the script.
    _in_root(root, "sh", "-c", "mkdir -p /opt/direct /root/unpacked"
             " && tar -C /opt/direct -xzf /root/release.tgz && tar -C /root/unpacked -xzf /root/release.tgz")
    installed = _in_root(root, "/root/unpacked/pycni-install.sh", "/opt/cni/bin")
    assert VERSION in installed.stdout
    assert (root / "opt/cni/bin/macvlan").read_text() == "#!/bin/sh\necho another plugin\n"
    for directory in ("/opt/direct", "/opt/cni/bin"):
        for plugin in PLUGINS:
            proc = debroot.run_in_root(root, [f"{directory}/{plugin}"], env={"CNI_COMMAND": "VERSION"})
            assert proc.returncode == 0, proc.stdout + proc.stderr
            assert "1.1.0" in json.loads(proc.stdout)["supportedVersions"]
            about = debroot.run_in_root(root, [f"{directory}/{plugin}"])
            assert f"CNI {plugin} plugin (pycni {VERSION})" in about.stderr
        version = _in_root(root, f"{directory}/pycni", "--version")
        assert version.stdout.startswith(f"pycni {VERSION} (CNI spec versions ")

    # The example list, as a runtime built on libcni 1.1.2 (spec up to 1.0.0) runs it.
    conflist = json.loads(EXAMPLE.read_text())
    conflist["cniVersion"] = "1.0.0"
    (root / "etc/cni/net.d").mkdir(parents=True)
    (root / "etc/cni/net.d/00-pycni.conflist").write_text(json.dumps(conflist))
    (root / "usr/local/bin/cnitool").write_bytes(cnitool.binary.read_bytes())
    (root / "usr/local/bin/cnitool").chmod(0o755)
    node, pod = netns("pycni-node-"), netns("pycni-pod-")

    result = _cnitool(root, "add", pod, node)
    address = result["ips"][0]["address"]
    assert address.startswith("10.1.0.")
    pod_addrs = [a["local"] for link in ip_json("addr", "show", "dev", "eth0", netns=pod.name)
                 for a in link["addr_info"]]
    assert address.split("/")[0] in pod_addrs
    gateway = [a["local"] for link in ip_json("addr", "show", "dev", "cbr0", netns=node.name)
               for a in link["addr_info"]]
    assert "10.1.0.1" in gateway
    reservation = root / "var/lib/cni/networks/pycni-cbr0" / address.split("/")[0]
    assert reservation.is_file()

    _cnitool(root, "check", pod, node)
    _cnitool(root, "del", pod, node)
    assert not reservation.exists()
    assert ip_json("link", "show", "dev", "eth0", netns=pod.name, check=False) is None
