"""hostPort as a user sees it, on an emulated node, through libcni, chained after our bridge.

Every path the reference promises, for TCP and UDP, IPv4 and IPv6, on both backends: a client
outside the node reaching nodeIP:hostPort (its source address preserved in the pod), the node to
its own address and to 127.0.0.1:hostPort (route_localnet; no ::1, as the reference), a pod to its
own hostPort (hairpin) and another pod to it. Then the rules are read back from the kernel, CHECK
passes, and DEL leaves nothing of the attachment.
"""

from __future__ import annotations

import json

import pytest

from .conftest import ask_from

pytestmark = pytest.mark.root

BACKENDS = ("iptables", "nftables")
HOST_PORT, POD_PORT = 18080, 8080


def _maps() -> list[dict]:
    # containerd's go-cni spelling: capitalised keys, as a real node sends them
    return [{"HostPort": HOST_PORT, "ContainerPort": POD_PORT, "Protocol": proto, "HostIP": ""}
            for proto in ("tcp", "udp")]


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_path_reaches_the_pod(backend, node, pods, echo):
    net = pods.network({"backend": backend})
    pod = pods(_maps(), net=net)
    other = pods([], net=net)
    echo(pod, POD_PORT)
    for proto in ("tcp", "udp"):
        for fam, node_ip, client_ip in ((4, node.ip4, node.client4), (6, node.ip6, node.client6)):
            gw = pod.gw4 if fam == 4 else pod.gw6
            where = f"{backend} {proto} IPv{fam}"
            # from outside the node: the client's own address arrives in the pod
            assert ask_from(node.client.name, proto, node_ip, HOST_PORT) == client_ip, where
            # from the node to its own address: no masquerade needed, the node's address arrives
            assert ask_from(node.ns.name, proto, node_ip, HOST_PORT) == node_ip, where
            # hairpin: the pod to its own hostPort, masqueraded to the bridge's address
            assert pod.ask(proto, node_ip, HOST_PORT) == gw, where
            # another pod of the node, through the node's address
            assert other.ask(proto, node_ip, HOST_PORT) == gw, where
        # 127.0.0.1 on the node, masqueraded to the bridge's address (route_localnet)
        assert ask_from(node.ns.name, proto, "127.0.0.1", HOST_PORT) == pod.gw4, f"{backend} {proto} lo"


@pytest.mark.parametrize("backend", BACKENDS)
def test_rules_read_back_check_and_del(backend, node, pods):
    pod = pods([*_maps(), {"hostPort": 18443, "containerPort": 443, "protocol": "tcp", "hostIP": node.ip4}],
               portmap={"backend": backend})
    if backend == "iptables":
        from cni.layout.portmap import dnat_chain

        chain = dnat_chain(pod.network, pod.cid)
        v4, v6 = node.iptables_save(4), node.iptables_save(6)
        mine4 = [line for line in v4 if chain in line]
        assert f"-A {chain} -p tcp -m tcp --dport {HOST_PORT} -j DNAT " \
               f"--to-destination {pod.ip4}:{POD_PORT}" in v4
        assert f"-A {chain} -d {node.ip4}/32 -p tcp -m tcp --dport 18443 -j DNAT " \
               f"--to-destination {pod.ip4}:443" in v4
        assert f"-A {chain} -s 127.0.0.1/32 -p udp -m udp --dport {HOST_PORT} -j CNI-HOSTPORT-SETMARK" in v4
        assert f"-A {chain} -p udp -m udp --dport {HOST_PORT} -j DNAT " \
               f"--to-destination [{pod.ip6}]:{POD_PORT}" in v6
        assert not [line for line in v6 if "18443 -j DNAT" in line], "an IPv4 hostIP stays out of IPv6"
        assert "-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT" in v4
        assert "-A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT" in v6
        assert len(mine4) == 1 + 3 * 3 + 2  # chain, 3 rules per mapping, 2 multiport entries
    else:
        for fam, ip in (("ip", pod.ip4), ("ip6", pod.ip6)):
            rules = [i["rule"] for i in node.nft(fam)["nftables"] if "rule" in i]
            dnats = [r for r in rules if r["chain"] == "hostports" and r.get("comment") == pod.cid]
            targets = sorted((e["dnat"]["addr"], e["dnat"]["port"]) for r in dnats for e in r["expr"]
                             if "dnat" in e)
            expected = [(ip, POD_PORT)] * 2 + ([(ip, 443)] if fam == "ip" else [])
            assert targets == sorted(expected), fam
            local = [r for r in rules if r["chain"] in ("prerouting", "output")]
            assert all(any("fib" in e.get("match", {}).get("left", {}) for e in r["expr"]) for r in local)
    assert pod.run("check").ok, pod.run("check").stderr
    # DEL without runtimeConfig still finds the rules: they are named after network and container
    pod.run("del", mappings=None).check()
    pod.deleted = True
    assert not [line for f in (4, 6) for line in node.iptables_save(f) if "CNI-DN-" in line]
    for fam in ("ip", "ip6"):
        listing = node.nft(fam)
        rules = [i["rule"] for i in (listing or {"nftables": []})["nftables"] if "rule" in i]
        assert not [r for r in rules if r.get("comment") == pod.cid]
    pod.run("del", mappings=None).check()  # idempotent


def test_check_finds_a_missing_rule(node, pods):
    pod = pods(_maps())
    from cni.layout.portmap import dnat_chain

    chain = dnat_chain(pod.network, pod.cid)
    node.sh("iptables", "-t", "nat", "-D", chain, "-p", "udp", "-m", "udp", "--dport", str(HOST_PORT), "-j",
            "DNAT", "--to-destination", f"{pod.ip4}:{POD_PORT}")
    out = pod.run("check")
    assert not out.ok and "missing" in out.stdout, out.stdout


def test_no_mappings_touches_nothing(node, pods):
    before = node.iptables_save(4), node.iptables_save(6)
    pods([])
    assert (node.iptables_save(4), node.iptables_save(6)) == before
    assert node.nft("ip") is None


def test_route_localnet_only_with_snat(node, pods, echo):
    """snat (the default) sets route_localnet on the bridge; without it nothing is masqueraded:
    the outside client still arrives with its own address, 127.0.0.1 is not forwarded."""
    net_on, net_off = pods.network(), pods.network({"snat": False})
    pods(_maps(), net=net_on)
    off = pods([{"hostPort": 18081, "containerPort": POD_PORT}], net=net_off)
    bridges = {}
    for name, d, _ in (net_on, net_off):
        conf = json.loads((d / f"{name}.conflist").read_text())
        bridges[name] = conf["plugins"][0]["bridge"]
    value = {n: node.sh("cat", f"/proc/sys/net/ipv4/conf/{b}/route_localnet").stdout.strip()
             for n, b in bridges.items()}
    assert value == {net_on[0]: "1", net_off[0]: "0"}
    echo(off, POD_PORT)
    assert ask_from(node.client.name, "tcp", node.ip4, 18081) == node.client4
    assert ask_from(node.ns.name, "tcp", "127.0.0.1", 18081).startswith("error")
    from cni.layout.portmap import dnat_chain

    chain = dnat_chain(off.network, off.cid)
    off_rules = [line for line in node.iptables_save(4) if line.startswith(f"-A {chain} ")]
    assert off_rules and not [line for line in off_rules if "SETMARK" in line]
