"""The masquerade and port-forwarding rules the plugins left, read back through `cni.layout`.

- iptables nat chains: the per-container ipMasq chains (`cni.layout.masq`) and portmap's DNAT
  chains (`cni.layout.portmap`), each owned by the (network, container ID) its rules' comments name;
- nftables ipMasq rules (`cni.layout.masq`'s table and chain), commented with network, ifname, ID.
"""

from __future__ import annotations

import json
from typing import NamedTuple

from cni.layout import masq, portmap

from .edges import run_tool

SAVE_TOOLS = {4: "iptables-save", 6: "ip6tables-save"}


class Chain(NamedTuple):
    family: int
    chain: str
    kind: str  # "ipMasq" or "portmap"
    network: str
    container_id: str


class NftRule(NamedTuple):
    network: str
    ifname: str
    container_id: str
    handle: int


def nat_chains(save: str, family: int) -> list[Chain]:
    """The per-container chains of an `iptables-save -t nat` dump, with the owners their comments
    record (a chain whose name two colliding owners share is listed for each)."""
    out = [Chain(family, chain, "ipMasq", net, cid)
           for chain, owners in masq.owners(save).items() for net, cid in owners]
    out += [Chain(family, chain, "portmap", net, cid)
            for chain, (net, cid) in portmap.iptables_owners(save).items()]
    return out


def nft_masq_rules(listing: str) -> list[NftRule]:
    """The per-attachment rules of the `nft -j list chain` listing of the ipMasq chain."""
    try:
        items = json.loads(listing).get("nftables", [])
    except (ValueError, AttributeError):
        return []
    out = []
    for item in items:
        rule = item.get("rule") if isinstance(item, dict) else None
        owner = masq.parse_nft_comment(str((rule or {}).get("comment", "")))
        if rule is not None and owner is not None:
            out.append(NftRule(*owner, int(rule.get("handle", 0))))
    return out


def read_chains(errors: list[str]) -> list[Chain]:
    """Both families' chains; a failing tool is noted in `errors` (a missing one adds nothing)."""
    chains: list[Chain] = []
    for family, tool in SAVE_TOOLS.items():
        save, why = run_tool([tool, "-t", "nat"])
        if save is not None:
            chains += nat_chains(save, family)
        elif why and "table does not exist" not in why and "not supported" not in why:
            errors.append(why)
    return chains


def read_nft_rules(errors: list[str]) -> list[NftRule]:
    listing, why = run_tool(["nft", "-j", "list", "chain", masq.NFT_FAMILY, masq.NFT_TABLE, masq.NFT_CHAIN])
    if listing is not None:
        return nft_masq_rules(listing)
    if why and "No such file or directory" not in why and "does not exist" not in why:
        errors.append(why)
    return []
