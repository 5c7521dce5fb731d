"""cni.names: the one hashed-name rule behind iptables chains, nft keys and IFB devices."""

from __future__ import annotations

import subprocess

from cni.layout import bandwidth, masq
from cni.names import hashed_name


def sha512sum(text: str) -> str:
    out = subprocess.run(["sha512sum"], input=text.encode(), capture_output=True, check=True).stdout
    return out.split()[0].decode()


def test_hashed_name_is_prefix_then_sha512_hex_cut_to_length():
    assert hashed_name("CNI-", "netabc", 28) == ("CNI-" + sha512sum("netabc"))[:28]
    assert hashed_name("", "x", 16) == sha512sum("x")[:16]
    assert hashed_name("longprefix", "x", 4) == "long"


def test_every_user_goes_through_it():
    assert masq.chain_name("net", "abc") == hashed_name("CNI-", "netabc", 28)
    assert bandwidth.ifb_name("mynet", "c1") == hashed_name("bwp", "mynetc1", 15)
