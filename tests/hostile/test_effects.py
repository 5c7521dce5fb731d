"""Hostile-input classes whose right answer is not an error, or whose effect is more than a code.

Each test runs the built plugins in a world of its own (test_corpus.world) and failed before the
fix it names: the files a plugin creates, the programs it runs, what DEL releases, what a failed
ADD puts back.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ip_json, ns_argv, ns_exec

from .corpus import World, base_config, prev_result
from .test_corpus import BOUND, call, prepare

pytestmark = pytest.mark.root


class Row:
    """What `prepare` needs of a case: a plugin and verb, nothing changed."""

    def __init__(self, plugin: str, command: str = "ADD") -> None:
        self.plugin, self.command, self.version = plugin, command, "1.0.0"
        self.seed = self.plant = self.env = None


def _config(plugin: str, w: World, **extra) -> bytes:
    config = base_config(plugin, w, "1.0.0", "ADD")
    config.update(extra)
    return json.dumps(config).encode()


def _fake(w: World, name: str, body: str) -> Path:
    path = w.tools / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


def test_data_dir_levels_are_0755_whatever_the_umask(world: World, bin_dir: Path):
    """old: os.makedirs made the parents 0777 less the umask: world-writable under umask 000."""
    prepare(Row("host-local"), world, bin_dir)
    data_dir = world.state / "a" / "b" / "c"
    config = json.loads(_config("host-local", world))
    config["ipam"]["dataDir"] = str(data_dir)
    env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": world.container_id, "CNI_NETNS": world.container_ns,
           "CNI_IFNAME": "eth0", "CNI_PATH": str(bin_dir), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
           **world.env}
    argv = ["nsenter", f"--net={world.host_ns}", "--", str(bin_dir / "host-local")]
    out = subprocess.run(argv, input=json.dumps(config).encode(), env=env, capture_output=True, timeout=BOUND,
                         umask=0)
    assert out.returncode == 0, out.stdout + out.stderr
    for level in (world.state / "a", world.state / "a" / "b", data_dir, data_dir / world.network):
        assert stat.S_IMODE(os.stat(level).st_mode) == 0o755, level


def test_tools_are_found_on_absolute_path_dirs_only_and_run_with_lc_all_c(world: World, bin_dir: Path):
    """old: an empty PATH element ran ./iptables-restore from the working directory, as root; the
    tools ran in the caller's locale, whose translated errors the plugin then failed to recognise."""
    prepare(Row("bridge"), world, bin_dir)
    planted = world.state / "cwd"
    planted.mkdir()
    marker = world.state / "planted-ran"
    for tool in ("iptables-restore", "iptables", "iptables-save", "nft"):
        script = planted / tool
        script.write_text(f"#!/bin/sh\ntouch {marker}\nexit 1\n")
        script.chmod(0o755)
    seen = world.state / "nft-locale"
    _fake(world, "nft", f'echo "$LC_ALL" >> {seen}\nexec /usr/sbin/nft "$@"')
    stdin = _config("bridge", world, ipMasq=True, ipMasqBackend="nftables")
    env = {"PATH": f":.:cwd:{world.tools}:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "de_DE.UTF-8",
           "LANG": "de_DE.UTF-8"}
    argv = ns_argv(world.host_ns, str(bin_dir / "bridge"), keep_mounts=True)
    full = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": world.container_id, "CNI_NETNS": world.container_ns,
            "CNI_IFNAME": "eth0", "CNI_PATH": str(bin_dir), **env, **world.env}
    out = subprocess.run(argv, input=stdin, env=full, capture_output=True, timeout=BOUND, cwd=planted)
    assert out.returncode == 0, out.stdout + out.stderr
    assert not marker.exists(), "a program of the working directory was run"
    assert seen.read_text().split() and set(seen.read_text().split()) == {"C"}
    full["CNI_COMMAND"] = "DEL"
    out = subprocess.run(argv, input=stdin, env=full, capture_output=True, timeout=BOUND, cwd=planted)
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_broken_nft_does_not_fail_del_of_an_iptables_attachment(world: World, bin_dir: Path):
    """old: DEL tried both backends and any nft failure but "no such table" failed it, for ever."""
    prepare(Row("bridge"), world, bin_dir)
    stdin = _config("bridge", world, ipMasq=True)
    assert call("bridge", "ADD", world, stdin, {}, bin_dir).returncode == 0
    assert world.container_id in ns_exec(world.host_ns, "iptables-save", "-t", "nat").stdout
    _fake(world, "nft", 'echo "Error: Could not process rule: Operation not supported" >&2\nexit 1')
    path = {"PATH": f"{world.tools}:/usr/sbin:/usr/bin:/sbin:/bin"}
    out = call("bridge", "DEL", world, stdin, path, bin_dir)
    assert out.returncode == 0, out.stdout + out.stderr
    assert b"Operation not supported" in out.stderr  # said in the log, not fatal
    assert world.container_id not in ns_exec(world.host_ns, "iptables-save", "-t", "nat").stdout


@pytest.mark.parametrize("plugin", ["host-local", "bridge"])
def test_del_releases_what_the_reference_reserved_under_a_name_that_is_not_utf8(
        world: World, bin_dir: Path, ref_bin_dir: Path, plugin: str):
    """old: DEL crashed with 999 encoding the name, so the address was never released.
    The reference v1.9.1 accepts the name on ADD (its check is length, '/', ':' and spaces)."""
    prepare(Row(plugin), world, bin_dir)
    ifname = os.fsdecode(b"eth\xff")
    env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": world.container_id, "CNI_NETNS": world.container_ns,
           "CNI_IFNAME": ifname, "CNI_PATH": str(ref_bin_dir), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    out = subprocess.run([str(ref_bin_dir / "host-local")], input=_config("host-local", world), env=env,
                         capture_output=True, timeout=BOUND)
    assert out.returncode == 0, out.stdout + out.stderr
    held = [p for p in world.network_dir.iterdir() if p.name[0].isdigit()]
    assert len(held) == 1 and held[0].read_bytes().endswith(b"\r\neth\xff")
    out = call(plugin, "DEL", world, _config(plugin, world), {"CNI_IFNAME": ifname}, bin_dir)
    assert out.returncode == 0, out.stdout + out.stderr
    assert not held[0].exists(), "the reservation was not released"


def test_a_failed_add_puts_back_the_address_force_address_replaced(world: World, bin_dir: Path):
    """old: forceAddress removed the bridge's address, and a later failure of the same ADD left
    the bridge with the new gateway instead."""
    prepare(Row("bridge"), world, bin_dir)
    ns_exec(world.host_ns, "ip", "addr", "add", "192.0.2.1/24", "dev", world.bridge)
    _fake(world, "nft", 'echo "Error: Could not process rule: No buffer space available" >&2\nexit 1')
    stdin = _config("bridge", world, isGateway=True, forceAddress=True, ipMasq=True, ipMasqBackend="nftables")
    path = {"PATH": f"{world.tools}:/usr/sbin:/usr/bin:/sbin:/bin"}
    out = call("bridge", "ADD", world, stdin, path, bin_dir)
    assert out.returncode != 0, out.stdout
    found = [f"{a['local']}/{a['prefixlen']}" for e in ip_json("addr", "show", "dev", world.bridge,
                                                                netns=world.host_ns)
             for a in e["addr_info"] if a["family"] == "inet"]
    assert found == ["192.0.2.1/24"]
    assert not [p for p in world.network_dir.iterdir() if p.name[0].isdigit()], "address not released"


def test_dad_that_does_not_settle_fails_the_add_like_the_reference(world: World, bin_dir: Path):
    """old: after 5 s the ADD returned success with the address still tentative."""
    prepare(Row("bridge"), world, bin_dir)
    for key, value in (("dad_transmits", "100"), ("accept_dad", "1")):
        ns_exec(world.container_ns, "sysctl", "-qw", f"net.ipv6.conf.default.{key}={value}")
    config = json.loads(_config("bridge", world, enabledad=True))
    config["ipam"]["subnet"] = "2001:db8:77::/64"
    out = call("bridge", "ADD", world, json.dumps(config).encode(), {}, bin_dir)
    assert out.returncode != 0, out.stdout
    answer = json.loads(out.stdout)
    assert answer["code"] == 999 and "tentative" in answer["msg"]
    assert not any(e["ifname"] == "eth0" for e in ip_json("link", "show", netns=world.container_ns))


def _portmap(w: World, command: str, network: str, cid: str, prev: dict, bin_dir: Path
             ) -> subprocess.CompletedProcess:
    mapping = {"hostPort": 18380, "containerPort": 80, "protocol": "tcp"}
    config = {"cniVersion": "1.0.0", "name": network, "type": "portmap", "prevResult": prev,
              "runtimeConfig": {"portMappings": [mapping]}}
    return call("portmap", command, w, json.dumps(config).encode(), {"CNI_CONTAINERID": cid}, bin_dir)


def test_portmap_names_that_hash_alike_never_touch_the_other_chain(world: World, bin_dir: Path):
    """old: (`<net>1`, `<id>`) and (`<net>`, `1<id>`) share the CNI-DN- chain name; the second ADD
    emptied the first's chain and its DEL removed it (that pod's hostPort gone)."""
    world.state.mkdir(parents=True, exist_ok=True)
    prev = prev_result(world, "1.0.0")
    first = _portmap(world, "ADD", world.network, "1" + world.container_id, prev, bin_dir)
    assert first.returncode == 0, first.stdout + first.stderr
    before = ns_exec(world.host_ns, "iptables-save", "-t", "nat").stdout.split("COMMIT")[0]
    rules = [line for line in before.splitlines() if line.startswith("-A CNI-DN-")]
    assert rules
    try:
        second = _portmap(world, "ADD", world.network + "1", world.container_id, prev, bin_dir)
        assert second.returncode == 1 and json.loads(second.stdout)["code"] == 11, second.stdout
        gone = _portmap(world, "DEL", world.network + "1", world.container_id, prev, bin_dir)
        assert gone.returncode == 0, gone.stdout + gone.stderr
        after = ns_exec(world.host_ns, "iptables-save", "-t", "nat").stdout
        assert [line for line in after.splitlines() if line.startswith("-A CNI-DN-")] == rules
    finally:
        _portmap(world, "DEL", world.network, "1" + world.container_id, prev, bin_dir)


def test_portmap_never_turns_route_localnet_on_for_the_uplink(world: World, bin_dir: Path):
    """old: a prevResult naming the node's uplink as its host interface (or an address behind the
    default route) turned route_localnet on there: 127.0.0.0/8 reachable from the LAN."""
    world.state.mkdir(parents=True, exist_ok=True)
    ns_exec(world.host_ns, "ip", "link", "add", "uplink0", "type", "veth", "peer", "name", "uplink0p")
    ns_exec(world.host_ns, "ip", "addr", "add", "192.0.2.1/24", "dev", "uplink0")
    for dev in ("uplink0", "uplink0p"):
        ns_exec(world.host_ns, "ip", "link", "set", dev, "up")
    ns_exec(world.host_ns, "ip", "route", "add", "default", "via", "192.0.2.254")
    key = "/proc/sys/net/ipv4/conf/uplink0/route_localnet"
    for address in ("192.0.2.50/24", "198.51.100.50/24"):
        prev = {"cniVersion": "1.0.0", "interfaces": [{"name": "uplink0"},
                                                      {"name": "eth0", "sandbox": world.container_ns}],
                "ips": [{"interface": 1, "address": address}]}
        try:
            out = _portmap(world, "ADD", world.network, world.container_id, prev, bin_dir)
            assert out.returncode == 0, out.stdout + out.stderr
            assert ns_exec(world.host_ns, "cat", key).stdout.strip() == "0", address
        finally:
            _portmap(world, "DEL", world.network, world.container_id, prev, bin_dir)


@pytest.mark.parametrize("kind", ("fifo", "directory"))
def test_portmap_del_is_not_held_by_a_record_that_is_not_a_file(kind: str, world: World, bin_dir: Path):
    """A FIFO or a directory where a route_localnet record of this namespace would be: DEL neither
    hangs nor fails on it (a DEL that fails for ever leaks the pod's rules)."""
    from cni.layout.portmap import LOCALNET_DIR

    world.state.mkdir(parents=True, exist_ok=True)
    records = Path(LOCALNET_DIR)
    records.mkdir(parents=True, exist_ok=True, mode=0o700)
    planted = records / f"{os.stat(world.host_ns).st_ino}-999-pmhostile"
    os.mkfifo(planted) if kind == "fifo" else planted.mkdir()
    try:
        out = _portmap(world, "DEL", world.network, world.container_id, prev_result(world, "1.0.0"), bin_dir)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "skipped" in out.stderr.decode()
    finally:
        os.unlink(planted) if kind == "fifo" else planted.rmdir()

def _run_in(w: World, plugin: str, command: str, stdin: bytes, cni_path: str, bin_dir: Path, cwd: Path
            ) -> subprocess.CompletedProcess:
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": w.container_id, "CNI_NETNS": w.container_ns,
           "CNI_IFNAME": "eth0", "CNI_PATH": cni_path, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    argv = ["nsenter", f"--net={w.host_ns}", "--", str(bin_dir / plugin)]
    return subprocess.run(argv, input=stdin, env=env, capture_output=True, timeout=BOUND, cwd=cwd)


def _marking_plugin(directory: Path, name: str, marker: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / name
    script.write_text(f"#!/bin/sh\ntouch {marker}\necho '{{\"cniVersion\": \"1.0.0\"}}'\n")
    script.chmod(0o755)


@pytest.mark.parametrize("relative", [".", "bin", "./bin"])
def test_relative_cni_path_elements_are_never_searched(world: World, bin_dir: Path, relative: str):
    """old: a relative CNI_PATH element found and ran a plugin of the working directory, as root.
    Now it is skipped: alone it finds nothing (7), beside an absolute directory that one serves."""
    prepare(Row("bridge"), world, bin_dir)
    cwd = world.state / "cwd"
    marker = world.state / "planted-ran"
    _marking_plugin(cwd / relative, "host-local", marker)
    stdin = _config("bridge", world)
    out = _run_in(world, "bridge", "ADD", stdin, relative, bin_dir, cwd)
    assert out.returncode == 1, out.stdout + out.stderr
    answer = json.loads(out.stdout)
    assert answer["code"] == 7 and "failed to find plugin" in answer["msg"], answer
    assert not marker.exists(), "a plugin of the working directory was run"
    assert not any(e["ifname"] == "eth0" for e in ip_json("link", "show", netns=world.container_ns))

    out = _run_in(world, "bridge", "ADD", stdin, f"{relative}:{bin_dir}", bin_dir, cwd)
    assert out.returncode == 0, out.stdout + out.stderr
    assert not marker.exists(), "a plugin of the working directory was run"
    assert json.loads(out.stdout)["ips"][0]["address"].startswith(world.subnet.rsplit(".", 1)[0])
    out = _run_in(world, "bridge", "DEL", stdin, f"{relative}:{bin_dir}", bin_dir, cwd)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize(("plugin", "ipam_type"), [("bridge", "bridge"), ("ptp", "ptp"), ("bridge", "ptp"),
                                                   ("ptp", "portmap")])
def test_an_interface_plugin_on_cni_path_is_never_run_as_ipam(world: World, bin_dir: Path, plugin: str,
                                                             ipam_type: str):
    """old: an executable named like an interface plugin (the reference's bridge, say) first on
    CNI_PATH was executed as the IPAM plugin, on the very config that names it."""
    prepare(Row(plugin), world, bin_dir)
    marker = world.state / "planted-ran"
    _marking_plugin(world.tools, ipam_type, marker)
    config = json.loads(_config(plugin, world))
    config["ipam"]["type"] = ipam_type
    out = call(plugin, "ADD", world, json.dumps(config).encode(), {"CNI_PATH": f"{world.tools}:{bin_dir}"},
               bin_dir)
    assert out.returncode == 1, out.stdout + out.stderr
    answer = json.loads(out.stdout)
    assert answer["code"] == 7 and "not an IPAM plugin" in answer["msg"], answer
    assert not marker.exists(), f"{ipam_type} was run as IPAM"


@pytest.mark.parametrize("plugin", ["bridge", "ptp"])
def test_a_foreign_ipam_plugin_still_serves(world: World, bin_dir: Path, plugin: str):
    """An IPAM plugin of another suite (here a stand-in for `static`) is executed from CNI_PATH and
    its address is what the container gets: only our own interface plugins are refused as IPAM."""
    prepare(Row(plugin), world, bin_dir)
    net = world.subnet.rsplit(".", 1)[0]
    address = net + ".77/24"
    answer = json.dumps({"cniVersion": "1.0.0", "ips": [{"address": address, "gateway": net + ".1"}]})
    _fake(world, "static", f"cat >/dev/null\n[ \"$CNI_COMMAND\" = ADD ] || exit 0\necho '{answer}'")
    config = json.loads(_config(plugin, world))
    config["ipam"] = {"type": "static"}
    stdin = json.dumps(config).encode()
    env = {"CNI_PATH": f"{world.tools}:{bin_dir}"}
    out = call(plugin, "ADD", world, stdin, env, bin_dir)
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout)["ips"][0]["address"] == address
    found = [f"{a['local']}/{a['prefixlen']}" for e in ip_json("addr", "show", "dev", "eth0",
                                                                netns=world.container_ns)
             for a in e["addr_info"] if a["family"] == "inet"]
    assert found == [address]
    out = call(plugin, "DEL", world, stdin, env, bin_dir)
    assert out.returncode == 0, out.stdout + out.stderr


# Peak memory of one call, read by a child that runs the plugin and reports getrusage of its own
# children (the plugin alone). Figures of a healthy call: ~11 MiB; before the bound on stdin,
# the 10 MB array took 412 MiB and 4 MB of it 172 MiB.
_PEAK = """
import resource, subprocess, sys
out = subprocess.run(sys.argv[1:], input=sys.stdin.buffer.read(), capture_output=True)
sys.stdout.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) + " " + out.stdout.decode())
"""


def _peak_kib(w: World, plugin: str, stdin: bytes, bin_dir: Path) -> tuple[int, dict]:
    env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": w.container_id, "CNI_NETNS": w.container_ns,
           "CNI_IFNAME": "eth0", "CNI_PATH": str(bin_dir), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    out = subprocess.run([sys.executable, "-c", _PEAK, str(bin_dir / plugin)], input=stdin, env=env,
                         capture_output=True, timeout=BOUND * 3, check=True)
    peak, _, answer = out.stdout.decode().partition(" ")
    return int(peak), json.loads(answer)


def _zeros(w: World, count: int) -> bytes:
    config = json.loads(_config("host-local", w))
    text = json.dumps(config).encode()
    return text[:-1] + b', "zeros": [' + b"0," * count + b"0]}"


def test_memory_stays_a_small_multiple_of_stdin(world: World, bin_dir: Path):
    """old: 10 MB of stdin (five million zeros under an unknown key) took 412 MiB. Now more than
    4 MiB is refused unread (6), and what is read costs a small multiple of its size."""
    prepare(Row("host-local"), world, bin_dir)
    peak, answer = _peak_kib(world, "host-local", _zeros(world, 5_000_000), bin_dir)
    assert answer["code"] == 6 and "too large" in answer["msg"], answer
    assert peak < 48 * 1024, f"peak {peak} KiB for a refused 10 MB stdin"
    stdin = _zeros(world, 2_000_000)  # 4 MB: under the bound, accepted
    peak, answer = _peak_kib(world, "host-local", stdin, bin_dir)
    assert "ips" in answer, answer
    assert peak < 24 * 1024 + 4 * len(stdin) // 1024, f"peak {peak} KiB for {len(stdin)} bytes of stdin"
