"""A portmap ADD that fails half-way leaves nothing: the IPv4 rules went in, the IPv6 ones could
not (their mark chain is missing there), and the whole attachment's rules are gone afterwards."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.root


def test_failed_ipv6_half_removes_the_ipv4_half(node, pods):
    node.sh("iptables", "-t", "nat", "-N", "PMFAIL-MARK")  # only IPv4 has it
    net = pods.network({"externalSetMarkChain": "PMFAIL-MARK"})
    before = node.iptables_save(4), node.iptables_save(6)
    with pytest.raises(AssertionError) as failed:
        pods([{"HostPort": 18080, "ContainerPort": 80, "Protocol": "tcp", "HostIP": ""}], net=net)
    assert '"code":999' in str(failed.value) and "PMFAIL-MARK" in str(failed.value)
    after = node.iptables_save(4), node.iptables_save(6)
    assert not [line for fam in after for line in fam if "CNI-DN-" in line], "no half of the rules stays"
    assert [line for line in after[0] if "PMFAIL" in line] == [line for line in before[0] if "PMFAIL" in line]
