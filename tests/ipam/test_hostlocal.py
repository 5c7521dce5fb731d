"""host-local verbs in-process through the contract: results, files after each verb, errors, GC, STATUS.

No root needed: every test works in its own temporary data directory.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from cni.contract import dispatch, request
from cni.contract.errors import INVALID_CONFIG, NOT_AVAILABLE, CNIError
from ipam import hostlocal

FILE = 0o600  # reservation and last_reserved_ip files: the reference's 0600 (v1.4.0 on)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "ipam"


def netconf(data: Path, version: str = "1.0.0", **ipam) -> dict:
    return {"cniVersion": version, "name": "net1", "type": "bridge",
            "ipam": {"type": "host-local", "dataDir": str(data), **ipam}}


DUAL = {"ranges": [[{"subnet": "10.1.2.0/24"}], [{"subnet": "2001:db8:1::/64"}]]}


def call(command: str, config: dict, cid: str = "c1", ifname: str = "eth0",
         cni_args: str = "") -> dict | None:
    env = {"CNI_COMMAND": command, "CNI_CONTAINERID": cid, "CNI_NETNS": "/var/run/netns/none",
           "CNI_IFNAME": ifname, "CNI_PATH": "/opt/cni/bin", "CNI_ARGS": cni_args}
    if command in ("GC", "STATUS"):
        env.update(CNI_CONTAINERID="", CNI_NETNS="", CNI_IFNAME="")
    req = request.parse_env(env)
    return dispatch.serve(hostlocal, req, lambda: json.dumps(config).encode())


def error(command: str, config: dict, **kw) -> CNIError:
    with pytest.raises(CNIError) as info:
        call(command, config, **kw)
    return info.value


def files(data: Path, network: str = "net1") -> dict[str, bytes]:
    d = data / network
    return {p.name: p.read_bytes() for p in sorted(d.iterdir())} if d.exists() else {}


def last(*ips: str) -> dict[str, bytes]:
    """The bookkeeping files: last_reserved_ip.<N> for each range set, and the lock."""
    return {**{f"last_reserved_ip.{n}": ip.encode() for n, ip in enumerate(ips)}, "lock": b""}


def addresses(result: dict) -> list[str]:
    return [ip["address"] for ip in result["ips"]]


# ---- ADD ----------------------------------------------------------------------------------------
def test_add_dual_stack_result_and_files(data: Path):
    result = call("ADD", netconf(data, **DUAL, routes=[{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]))
    assert result == {
        "cniVersion": "1.0.0",
        "ips": [{"address": "10.1.2.2/24", "gateway": "10.1.2.1"},
                {"address": "2001:db8:1::2/64", "gateway": "2001:db8:1::1"}],
        "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}],
    }
    assert files(data) == {"10.1.2.2": b"c1\r\neth0", "2001:db8:1::2": b"c1\r\neth0",
                           **last("10.1.2.2", "2001:db8:1::2")}
    net = data / "net1"
    assert stat.S_IMODE(net.stat().st_mode) == 0o755
    assert {p.name: stat.S_IMODE(p.stat().st_mode) for p in net.iterdir()} == {
        "10.1.2.2": FILE, "2001:db8:1::2": FILE, "last_reserved_ip.0": FILE, "last_reserved_ip.1": FILE,
        "lock": 0o750}


def test_add_prints_every_version(data: Path):
    v031 = call("ADD", netconf(data, "0.3.1", subnet="10.1.2.0/24"), cid="a")
    assert v031 == {"cniVersion": "0.3.1", "ips": [{"version": "4", "address": "10.1.2.2/24",
                                                     "gateway": "10.1.2.1"}], "dns": {}}
    v020 = call("ADD", netconf(data, "0.2.0", **DUAL), cid="b")
    assert v020 == {"cniVersion": "0.2.0", "ip4": {"ip": "10.1.2.3/24", "gateway": "10.1.2.1"},
                    "ip6": {"ip": "2001:db8:1::2/64", "gateway": "2001:db8:1::1"}, "dns": {}}


def test_round_robin_continues_after_release(data: Path):
    conf = netconf(data, subnet="10.1.2.0/29")
    got = [addresses(call("ADD", conf, cid=c))[0] for c in ("a", "b", "c")]
    assert got == ["10.1.2.2/29", "10.1.2.3/29", "10.1.2.4/29"]
    call("DEL", conf, cid="a")
    assert addresses(call("ADD", conf, cid="d")) == ["10.1.2.5/29"]
    assert addresses(call("ADD", conf, cid="e")) == ["10.1.2.6/29"]
    assert addresses(call("ADD", conf, cid="f")) == ["10.1.2.2/29"]      # wrapped, skipping the gateway
    err = error("ADD", conf, cid="g")
    assert (err.code, err.msg) == (999, "failed to allocate for range 0: "
                                        "no IP addresses available in range set: 10.1.2.1-10.1.2.6")
    assert files(data)["last_reserved_ip.0"] == b"10.1.2.2"


def test_second_interface_of_one_container(data: Path):
    conf = netconf(data, **DUAL)
    call("ADD", conf, ifname="eth0")
    assert addresses(call("ADD", conf, ifname="net1")) == ["10.1.2.3/24", "2001:db8:1::3/64"]
    assert files(data)["10.1.2.3"] == b"c1\r\nnet1"


def test_duplicate_attachment_is_refused_and_changes_nothing(data: Path):
    conf = netconf(data, **DUAL)
    call("ADD", conf)
    before = files(data)
    err = error("ADD", conf)
    assert err.code == 999
    assert err.msg == "failed to allocate for range 0: 10.1.2.2 has been allocated to c1, " \
                      "duplicate allocation is not allowed"
    assert files(data) == before


def test_failure_in_a_later_set_releases_what_was_taken(data: Path):
    conf = netconf(data, ranges=[[{"subnet": "10.1.2.0/24"}],
                                 [{"subnet": "10.1.3.0/24", "rangeStart": "10.1.3.9",
                                   "rangeEnd": "10.1.3.9"}]])
    call("ADD", conf, cid="first")
    err = error("ADD", conf, cid="second")
    assert err.msg == ("failed to allocate for range 1: "
                       "no IP addresses available in range set: 10.1.3.9-10.1.3.9")
    assert sorted(n for n in files(data) if n[0].isdigit()) == ["10.1.2.2", "10.1.3.9"]


def test_requested_addresses(data: Path):
    conf = netconf(data, **DUAL)
    result = call("ADD", conf, cid="a", cni_args="IgnoreUnknown=1;K8S_POD_NAME=x;IP=10.1.2.50/24")
    assert addresses(result) == ["10.1.2.50/24", "2001:db8:1::2/64"]
    assert files(data)["last_reserved_ip.0"] == b"10.1.2.50"
    conf_ips = dict(conf, args={"cni": {"ips": ["2001:db8:1::99"]}}, runtimeConfig={"ips": ["10.1.2.60/24"]})
    assert addresses(call("ADD", conf_ips, cid="b")) == ["10.1.2.60/24", "2001:db8:1::99/64"]

    err = error("ADD", conf, cid="c", cni_args="IP=10.1.2.50")
    assert err.msg == ("failed to allocate for range 0: requested IP address 10.1.2.50 is not available in "
                       "range set 10.1.2.1-10.1.2.254")
    err = error("ADD", conf, cid="c", cni_args="IP=10.1.2.1")
    assert err.msg == "failed to allocate for range 0: requested ip 10.1.2.1 is subnet's gateway"
    before = files(data)
    err = error("ADD", dict(conf, runtimeConfig={"ips": ["10.1.2.70", "10.1.2.71", "10.9.9.9"]}), cid="c")
    assert err.msg == "failed to allocate all requested IPs: 10.1.2.71 10.9.9.9"
    assert files(data) == {**before, **last("10.1.2.70", "2001:db8:1::9a")}


def test_runtime_ip_ranges_come_first(data: Path):
    conf = netconf(data, subnet="10.1.2.0/24")
    conf["runtimeConfig"] = {"ipRanges": [[{"subnet": "10.7.0.0/16", "rangeStart": "10.7.3.3"}]]}
    assert addresses(call("ADD", conf)) == ["10.7.3.3/16", "10.1.2.2/24"]
    assert files(data)["last_reserved_ip.0"] == b"10.7.3.3"
    assert files(data)["last_reserved_ip.1"] == b"10.1.2.2"


def test_resolv_conf_and_routes_in_the_result(data: Path, tmp_path: Path):
    resolv = tmp_path / "resolv.conf"
    resolv.write_text("nameserver 10.0.0.53\nsearch svc.cluster.local\noptions ndots:5\n")
    conf = netconf(data, subnet="10.1.2.0/24", resolvConf=str(resolv),
                   routes=[{"dst": "10.0.0.0/8", "gw": "10.1.2.254", "priority": 5}])
    result = call("ADD", dict(conf, cniVersion="1.1.0"))
    assert result["dns"] == {"nameservers": ["10.0.0.53"], "search": ["svc.cluster.local"],
                             "options": ["ndots:5"]}
    assert result["routes"] == [{"dst": "10.0.0.0/8", "gw": "10.1.2.254", "priority": 5}]
    err = error("ADD", dict(conf, ipam=dict(conf["ipam"], resolvConf=str(tmp_path / "missing"))), cid="x")
    assert err.code == 5 and "No such file" in err.msg


def test_keys_are_matched_case_insensitively(data: Path):
    conf = {"cniVersion": "1.0.0", "name": "net1", "IPAM": {"Type": "host-local", "DataDir": str(data),
                                                           "RANGES": [[{"Subnet": "10.1.2.0/24"}]]}}
    assert addresses(call("ADD", conf)) == ["10.1.2.2/24"]


def test_invalid_config_is_code_7_and_writes_nothing(data: Path):
    err = error("ADD", netconf(data, subnet="10.1.2.1/24"))
    assert err.code == INVALID_CONFIG
    assert not data.exists()
    assert error("ADD", {"cniVersion": "1.0.0", "name": "n"}).code == INVALID_CONFIG


# ---- DEL ------------------------------------------------------------------------------------------
def test_del_leaves_only_bookkeeping_and_is_idempotent(data: Path):
    conf = netconf(data, **DUAL)
    call("ADD", conf)
    call("ADD", conf, cid="other")
    assert call("DEL", conf) is None
    assert files(data) == {"10.1.2.3": b"other\r\neth0", "2001:db8:1::3": b"other\r\neth0",
                           **last("10.1.2.3", "2001:db8:1::3")}
    call("DEL", conf)
    call("DEL", conf, cid="never-added")
    call("DEL", conf, cid="other")
    assert files(data) == last("10.1.2.3", "2001:db8:1::3")


def test_del_of_an_old_id_only_file(data: Path):
    conf = netconf(data, subnet="10.1.2.0/24")
    (data / "net1").mkdir(parents=True)
    (data / "net1" / "10.1.2.9").write_bytes(b"  c1\n")
    call("DEL", conf)
    assert files(data) == {"lock": b""}


def test_del_needs_neither_the_directory_nor_valid_ranges(data: Path):
    conf = netconf(data, subnet="10.1.2.0/24")
    call("ADD", conf)
    broken = netconf(data, subnet="10.1.2.1/24", rangeStart="10.9.9.9")
    call("DEL", broken, cni_args="IP=not-an-ip")
    assert "10.1.2.2" not in files(data)
    call("DEL", netconf(data / "absent", subnet="10.1.2.0/24"))
    assert not (data / "absent").exists()


# ---- CHECK ----------------------------------------------------------------------------------------
def test_check(data: Path):
    conf = netconf(data, "0.4.0", **DUAL)
    err = error("CHECK", conf)
    assert err.msg == "host-local: Failed to find address added by container c1"
    call("ADD", conf)
    assert call("CHECK", conf) is None
    assert error("CHECK", conf, ifname="eth9").msg.startswith("host-local: Failed to find address")
    call("DEL", conf)
    assert error("CHECK", conf).code == 999


# ---- GC -------------------------------------------------------------------------------------------
def gc_conf(data: Path, key: str | None, attachments: list[tuple[str, str]]) -> dict:
    conf = netconf(data, "1.1.0", **DUAL)
    if key:
        conf[key] = [{"containerID": c, "ifname": i} for c, i in attachments]
    return conf


@pytest.mark.parametrize("key", ["cni.dev/valid-attachments", "cni.dev/attachments"])
def test_gc_releases_what_is_not_listed(data: Path, key: str):
    conf = netconf(data, "1.1.0", **DUAL)
    for cid, ifname in (("a", "eth0"), ("a", "eth1"), ("b", "eth0")):
        call("ADD", conf, cid=cid, ifname=ifname)
    (data / "net1" / "10.1.2.200").write_bytes(b"legacy")
    (data / "net1" / "10.1.2.201").write_bytes(b"b")
    assert call("GC", gc_conf(data, key, [("a", "eth0"), ("b", "eth0")])) is None
    assert files(data) == {"10.1.2.2": b"a\r\neth0", "2001:db8:1::2": b"a\r\neth0",
                           "10.1.2.4": b"b\r\neth0", "2001:db8:1::4": b"b\r\neth0", "10.1.2.201": b"b",
                           **last("10.1.2.4", "2001:db8:1::4")}


def test_gc_valid_attachments_win_over_the_older_key(data: Path):
    conf = netconf(data, "1.1.0", **DUAL)
    call("ADD", conf, cid="a")
    call("ADD", conf, cid="b")
    gc = dict(conf, **{"cni.dev/valid-attachments": [{"containerID": "a", "ifname": "eth0"}],
                       "cni.dev/attachments": [{"containerID": "b", "ifname": "eth0"}]})
    call("GC", gc)
    assert sorted(files(data)) == ["10.1.2.2", "2001:db8:1::2", *sorted(last("", ""))]


@pytest.mark.parametrize("listed", [None, []])
def test_gc_without_valid_attachments_releases_everything(data: Path, listed):
    conf = netconf(data, "1.1.0", **DUAL)
    call("ADD", conf, cid="a")
    call("ADD", conf, cid="b")
    call("GC", gc_conf(data, None if listed is None else "cni.dev/valid-attachments", listed or []))
    assert files(data) == last("10.1.2.3", "2001:db8:1::3")
    assert addresses(call("ADD", conf, cid="c")) == ["10.1.2.4/24", "2001:db8:1::4/64"]


def test_gc_keeps_reservations_younger_than_the_grace_pycni_gc_sends(data: Path):
    """`pycni gc` lists valid attachments a moment before GC runs; an ADD since then is kept."""
    import os
    import time

    conf = netconf(data, "1.1.0", **DUAL)
    call("ADD", conf, cid="old")
    call("ADD", conf, cid="new")
    past = time.time() - 600
    for f in (data / "net1").iterdir():
        if f.read_bytes().startswith(b"old"):
            os.utime(f, (past, past))
    call("GC", dict(gc_conf(data, "cni.dev/valid-attachments", []), **{hostlocal.GC_GRACE_KEY: 300}))
    assert {f: c for f, c in files(data).items() if not f.startswith(("last", "lock"))} == {
        "10.1.2.3": b"new\r\neth0", "2001:db8:1::3": b"new\r\neth0"}
    for bad in (-1, "300", True):
        gc = dict(gc_conf(data, "cni.dev/valid-attachments", []), **{hostlocal.GC_GRACE_KEY: bad})
        assert error("GC", gc).code == INVALID_CONFIG
    call("GC", dict(gc_conf(data, "cni.dev/valid-attachments", []), **{hostlocal.GC_GRACE_KEY: 0}))
    assert files(data) == last("10.1.2.3", "2001:db8:1::3")


def test_gc_on_a_network_never_used(data: Path):
    call("GC", gc_conf(data, None, []))
    assert not data.exists()


# ---- STATUS ---------------------------------------------------------------------------------------
def test_status_ready_then_exhausted_then_ready(data: Path):
    conf = netconf(data, "1.1.0", ranges=[[{"subnet": "10.1.2.0/24"}], [{"subnet": "10.1.3.0/30"}]])
    assert call("STATUS", conf) is None
    assert not data.exists()
    call("ADD", conf, cid="a")
    err = error("STATUS", conf)
    assert err.code == NOT_AVAILABLE
    assert err.msg == "host-local: no free addresses left in range set 1 (10.1.3.1-10.1.3.2)"
    call("DEL", conf, cid="a")
    assert call("STATUS", conf) is None


def test_status_unwritable_data_dir(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    err = error("STATUS", netconf(blocker / "sub", "1.1.0", subnet="10.1.2.0/24"))
    assert err.code == NOT_AVAILABLE
    assert "cannot be written" in err.msg and str(blocker) in err.msg

