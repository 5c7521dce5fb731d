"""Our ptp next to the reference's, v1.9.1 (what kind ships) and Debian's 1.1.1: the same config
gives the same result, the same kernel state in both namespaces (addresses, routes, neighbours,
sysctls), the same host-local files and masquerade rules; each one's DEL removes what the other's
ADD made, and our CHECK accepts both ADDs.

The configs are kindnetd's (ptp with host-local, default routes, one range per pod CIDR, at
0.3.1) single- and dual-stack, with and without ipMasq and mtu, and a few other spec versions.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bridge.conftest import iptables_lines, masq_rules_nft
from helpers import addresses, ip_json, link, link_exists, unique_subnet_v6
from helpers import unique_subnet_v4 as v4

pytestmark = pytest.mark.root


def v6():
    return unique_subnet_v6(64)


def kind_ipam(*subnets) -> dict:
    """host-local as kindnetd writes it: a default route per family, one range per pod CIDR."""
    routes = [{"dst": "0.0.0.0/0" if s.version == 4 else "::/0"} for s in subnets]
    return {"type": "host-local", "routes": routes, "ranges": [[{"subnet": str(s)}] for s in subnets]}


MATRIX = {
    "kind-v4-0.3.1": lambda: {"ipMasq": False, "mtu": 1500, "ipam": kind_ipam(v4())},
    "kind-dual-0.3.1": lambda: {"ipMasq": False, "mtu": 1500, "ipam": kind_ipam(v4(), v6())},
    "kind-v6-0.3.1": lambda: {"ipMasq": False, "ipam": kind_ipam(v6())},
    "v4-masq-mtu-0.3.1": lambda: {"ipMasq": True, "mtu": 1400, "ipam": kind_ipam(v4())},
    "dual-masq-1.0.0": lambda: {"ipMasq": True, "ipam": kind_ipam(v4(), v6())},
    "dual-masq-nft-1.0.0": lambda: {"ipMasq": True, "ipMasqBackend": "nftables",
                                    "ipam": kind_ipam(v4(), v6())},
    "v4-dns-0.4.0": lambda: {"ipam": kind_ipam(v4()),
                             "dns": {"nameservers": ["192.0.2.53"], "search": ["a.b"]}},
    "v4-0.2.0": lambda: {"ipam": kind_ipam(v4())},
    "v4-0.1.0": lambda: {"ipam": kind_ipam(v4())},
    "v4-no-routes-1.0.0": lambda: {"ipam": {"type": "host-local", "ranges": [[{"subnet": str(v4())}]]}},
}
# cnitool (libcni 1.1) stops at spec 1.0.0; 1.1.0 is in test_ptp.py, run directly. Debian's 1.1.1
# predates ipMasqBackend (it always uses iptables).
DEBIAN_CASES = sorted(c for c in MATRIX if "nft" not in c)


def version_of(case: str) -> str:
    return case.rsplit("-", 1)[1]


def _shape(result: dict) -> dict:
    """The result with the names and MACs that differ by construction made comparable."""
    out = json.loads(json.dumps(result))
    for i in out.get("interfaces", []):
        if i["name"].startswith("veth"):
            i["name"] = "<veth>"
        if "mac" in i:
            i["mac"] = "<mac>"
        if "sandbox" in i:
            i["sandbox"] = "<netns>"
    return out


def host_veth(result: dict, ns) -> str:
    """The host end: the peer of the container's eth0 (found by ifindex, whatever the result lists)."""
    peer = link("eth0", ns)["link_index"]
    (name,) = [entry["ifname"] for entry in ip_json("link", "show") if entry["ifindex"] == peer]
    return name


def _routes(netns, dev: str | None = None) -> list[dict]:
    keys = ("dst", "gateway", "scope", "protocol", "metric", "prefsrc", "flags")
    where = ("dev", dev) if dev else ()
    return sorted(({k: r.get(k) for k in keys} for fam in ("-4", "-6")
                   for r in ip_json(fam, "route", "show", *where, netns=netns)
                   if not r["dst"].startswith(("fe80", "ff00", "multicast"))), key=json.dumps)


def _neighbours(netns, dev: str) -> list[dict]:
    return sorted(({k: n.get(k) for k in ("dst", "state")} for n in ip_json("neigh", "show", "dev", dev,
                   netns=netns) if n.get("state") != ["FAILED"] and not n["dst"].startswith("fe80")),
                  key=json.dumps)


def _sysctl(ns, key: str) -> str:
    if ns is None:
        return Path(f"/proc/sys/net/{key}").read_text().strip()
    return ns.exec("cat", f"/proc/sys/net/{key}", check=False).stdout.strip()


def _ipam_files(data_dir: Path, network: str) -> dict[str, str]:
    d = data_dir / network
    return {p.name: p.read_text() for p in sorted(d.iterdir()) if p.name != "lock"} if d.is_dir() else {}


def state(result: dict, ns, network: str, data_dir: Path) -> dict:
    """The attachment read back from the kernel and the disk, without the host end's random name."""
    host = host_veth(result, ns)
    h, c = link(host), link("eth0", ns)
    fw = [line.replace(host, "<veth>") for fam in (4, 6) for line in iptables_lines(network, fam)]
    nft = [json.dumps(r["expr"]) for r in masq_rules_nft(network)]
    return {
        "host_end": {"kind": h["linkinfo"]["info_kind"], "mtu": h["mtu"], "operstate": h["operstate"],
                     "flags": sorted(h["flags"]), "addresses": sorted(addresses(host)),
                     "routes": [{**r, "dev": "<veth>"} for r in _routes(None, host)],
                     "neighbours": _neighbours(None, host),
                     "sysctls": {k: _sysctl(None, f"ipv{k[0]}/conf/{host}/{k[2:]}")
                                 for k in ("6/accept_ra", "6/disable_ipv6", "4/forwarding")}},
        "container": {"kind": c["linkinfo"]["info_kind"], "mtu": c["mtu"], "operstate": c["operstate"],
                      "flags": sorted(c["flags"]), "addresses": sorted(addresses("eth0", ns)),
                      "routes": _routes(ns), "neighbours": _neighbours(ns, "eth0"),
                      "sysctls": {k: _sysctl(ns, f"ipv6/conf/{k}") for k in (
                          "eth0/disable_ipv6", "lo/disable_ipv6", "eth0/keep_addr_on_down",
                          "eth0/accept_dad", "eth0/accept_ra")}},
        "forwarding": {k: _sysctl(None, k) for k in ("ipv4/ip_forward", "ipv6/conf/all/forwarding")},
        "ipam": _ipam_files(data_dir, network),
        "iptables": sorted(fw),
        "nft": sorted(nft),
    }


def assert_clean(host: str, ns, network: str, data_dir: Path) -> None:
    assert not link_exists("eth0", ns)
    assert not link_exists(host)
    files = _ipam_files(data_dir, network)
    assert set(files) <= {"last_reserved_ip.0", "last_reserved_ip.1"}, files
    assert iptables_lines(network) == [] and iptables_lines(network, 6) == []
    assert masq_rules_nft(network) == []


def run_pair(case: str, impls: dict[str, Path], net, netns, state_dir) -> dict:
    """ADD by each implementation, read back, CHECK by both, DEL by the other, then DEL again."""
    extra = MATRIX[case]()
    version = version_of(case)
    out = {}
    names = list(impls)
    for adder, deleter in ((names[0], names[1]), (names[1], names[0])):
        plugin = {"type": "ptp", **json.loads(json.dumps(extra))}
        data_dir = state_dir / f"ipam-{adder}"  # a fresh dataDir each: the same first address for both
        plugin["ipam"]["dataDir"] = str(data_dir)
        n = net(plugin, version, name=f"pcptp-{case}")
        ns = netns()
        cid = f"pcptp-{case}"  # the same attachment for both: chain names and comments match
        add = n("add", ns, impls[adder], container_id=cid).check()
        assert add.json["cniVersion"] == version
        host = host_veth(add.json, ns)
        checks = {who: n("check", ns, impls[who], container_id=cid) for who in names} \
            if version >= "0.4.0" else {}
        out[adder] = (_shape(add.json), state(add.json, ns, n.name, data_dir),
                      {who: (o.rc, o.stdout) for who, o in checks.items()})
        n("del", ns, impls[deleter], container_id=cid).check()
        assert_clean(host, ns, n.name, data_dir)
        n("del", ns, impls[adder], container_id=cid).check()  # idempotent
        n("del", ns, impls[deleter], container_id=cid).check()
    return out


def _compare(runs: dict, theirs: str, case: str, skip: tuple[str, ...] = ()) -> None:
    (our_shape, our_state, our_checks), (ref_shape, ref_state, ref_checks) = runs["ours"], runs[theirs]
    assert our_shape == ref_shape
    for key in ref_state:
        if key in skip:
            continue
        assert our_state[key] == ref_state[key], key
    for checks in (our_checks, ref_checks):  # each CHECK accepts each ADD
        for who, (rc, stdout) in checks.items():
            assert rc == 0, f"{who}'s CHECK: {stdout}"
    if "masq" in case:
        assert our_state["iptables"] or our_state["nft"], "masquerade rules expected"


@pytest.mark.parametrize("case", sorted(MATRIX))
def test_same_as_reference(case, ours, ref, net, netns, state_dir):
    runs = run_pair(case, {"ours": ours, "ref": ref}, net, netns, state_dir)
    _compare(runs, "ref", case)


@pytest.mark.parametrize("case", DEBIAN_CASES)
def test_same_as_debian(case, ours, deb, net, netns, state_dir):
    """Debian's 1.1.1 (older nodes): the same, but for keep_addr_on_down, which 1.1.1 leaves alone."""
    runs = run_pair(case, {"ours": ours, "deb": deb}, net, netns, state_dir)
    for _, st, _ in runs.values():
        st["container"]["sysctls"].pop("eth0/keep_addr_on_down")
    _compare(runs, "deb", case)
