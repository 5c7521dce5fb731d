"""bridge's ipMasq: masquerade an attachment's traffic leaving its subnets, on either backend.

The rules are laid out exactly as the reference plugin lays them out, so that DEL and GC of either
plugin find what ADD of either made: every name and comment derives from (network, container ID[,
ifname]) the same way.

* iptables (`nat` table of iptables and ip6tables): a chain `CNI-<sha512(net+cid)>`[:28] holding
  `-d <subnet> ACCEPT` and `! -d <multicast> MASQUERADE`, entered from POSTROUTING by
  `-s <ip> -j <chain>`; every rule carries the comment `name: "<net>" id: "<cid>"`.
* nftables: table `inet cni_plugins_masquerade`, base chain `postrouting` (nat, srcnat) that
  skips multicast and jumps to `masq_checks`, which holds one rule per address commented
  `<sha512(net)[:16]>-<sha512(ifname:cid)[:16]>, net: ..., if: ..., id: ...`.
"""

from __future__ import annotations

import json

from cni.names import hashed_name

from . import iptables, nftables
from .tools import default_backend, every, on_both_backends

MAX_CHAIN = 28
NFT_COMMENT_MAX = 128
NFT_TABLE = "cni_plugins_masquerade"
NFT_CHAIN = "masq_checks"
NFT_TABLE_COMMENT = "Masquerading for plugins from github.com/containernetworking/plugins"
NFT_CHAIN_COMMENT = "Masquerade traffic from certain IPs to any (non-multicast) IP outside their subnet"
MULTICAST = {4: "224.0.0.0/4", 6: "ff00::/8"}
_SKIPPED = "masquerade rules"


# ---- names -----------------------------------------------------------------------------------
def chain_name(network: str, container_id: str) -> str:
    """`CNI-` + hash: the per-container iptables chain (28 characters)."""
    return hashed_name("CNI-", network + container_id, MAX_CHAIN)


def comment(network: str, container_id: str) -> str:
    """The iptables rule comment, as Go's `name: %q id: %q` prints it."""
    return f"name: {_go_quote(network)} id: {_go_quote(container_id)}"


def _go_quote(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def nft_network_hash(network: str) -> str:
    return hashed_name("", network, 16)


def nft_instance_hash(network: str, ifname: str, container_id: str) -> str:
    return nft_network_hash(network) + "-" + hashed_name("", f"{ifname}:{container_id}", 16)


def nft_comment(network: str, ifname: str, container_id: str) -> str:
    text = "{}, net: {}, if: {}, id: {}".format(
        nft_instance_hash(network, ifname, container_id),
        network.replace('"', ""), ifname.replace('"', ""), container_id.replace('"', ""))
    return text[:NFT_COMMENT_MAX]


# ---- iptables ----------------------------------------------------------------------------------
def iptables_script(ips: list, network: str, container_id: str) -> str:
    """The iptables-restore batch adding one family's masquerade rules (all `ips` of one family).

    Declaring the chain empties it if it exists, so a repeated ADD leaves one set of rules.
    """
    chain = chain_name(network, container_id)
    c = iptables.quote(comment(network, container_id))
    lines = ["*nat", f":{chain} - [0:0]"]
    for ip in ips:
        lines.append(f"-A {chain} -d {ip.network} -m comment --comment {c} -j ACCEPT")
        lines.append(f"-A {chain} ! -d {MULTICAST[ip.version]} -m comment --comment {c} -j MASQUERADE")
    for ip in ips:
        lines.append(f"-A POSTROUTING -s {ip.ip}/{ip.max_prefixlen} -m comment --comment {c} -j {chain}")
    lines += ["COMMIT", ""]
    return "\n".join(lines)


def iptables_owners(save: str) -> dict[str, tuple[str, str]]:
    """chain -> (network, container ID) for every masquerade chain named in a nat table dump.

    The owners come from the rule comments, so GC can map a chain back to its attachment.
    """
    out: dict[str, tuple[str, str]] = {}
    for chain, target, text in iptables.commented_rules(save, "CNI-"):
        name = chain if chain.startswith("CNI-") else target
        if not name or not name.startswith("CNI-"):
            continue
        owner = _parse_comment(text)
        if owner and chain_name(*owner) == name:
            out[name] = owner
    return out


def _parse_comment(text: str) -> tuple[str, str] | None:
    """(network, container ID) from `name: "<net>" id: "<cid>"`, or None."""
    if not text.startswith("name: "):
        return None
    try:
        decoder = json.JSONDecoder()
        network, end = decoder.raw_decode(text, len("name: "))
        if not text.startswith(" id: ", end):
            return None
        cid, end = decoder.raw_decode(text, end + len(" id: "))
    except ValueError:
        return None
    if end != len(text) or not isinstance(network, str) or not isinstance(cid, str):
        return None
    return network, cid


def _setup_iptables(ips: list, network: str, container_id: str) -> None:
    for family in (4, 6):
        mine = [ip for ip in ips if ip.version == family]
        if mine:
            iptables.restore(family, iptables_script(mine, network, container_id),
                             f"ipMasq for {network}/{container_id}")


def _teardown_iptables(network: str, container_id: str) -> None:
    """Remove the container's chain and jumps in both families, whatever addresses they name."""
    chain = chain_name(network, container_id)
    iptables.remove_chains(lambda save: {chain}, f"remove ipMasq of {network}/{container_id}", _SKIPPED)


def _gc_iptables(network: str, valid_ids: set[str]) -> None:
    """Remove the chains (and jumps) of `network` whose container ID is not in `valid_ids`."""
    def stale(save: str) -> set[str]:
        return {chain for chain, (net, cid) in iptables_owners(save).items()
                if net == network and cid not in valid_ids}

    iptables.remove_chains(stale, f"garbage-collect ipMasq of {network}", _SKIPPED)


# ---- nftables ----------------------------------------------------------------------------------
def nft_script(ips: list, network: str, ifname: str, container_id: str, stale: list[int]) -> str:
    """The nft batch adding the masquerade rules (and dropping `stale` rule handles first)."""
    t = f"inet {NFT_TABLE}"
    c = nftables.quote(nft_comment(network, ifname, container_id))
    lines = [
        f"add table {t} {{ comment {nftables.quote(NFT_TABLE_COMMENT)} ; }}",
        f"add chain {t} {NFT_CHAIN} {{ comment {nftables.quote(NFT_CHAIN_COMMENT)} ; }}",
        f"add chain {t} postrouting {{ type nat hook postrouting priority srcnat ; }}",
        f"flush chain {t} postrouting",
        f"add rule {t} postrouting ip daddr == 224.0.0.0/4 return",
        f"add rule {t} postrouting ip6 daddr == ff00::/8 return",
        f"add rule {t} postrouting goto {NFT_CHAIN}",
    ]
    lines += [f"delete rule {t} {NFT_CHAIN} handle {h}" for h in stale]
    for ip in ips:
        fam = "ip" if ip.version == 4 else "ip6"
        lines.append(f"add rule {t} {NFT_CHAIN} {fam} saddr == {ip.ip} {fam} daddr != {ip.network} "
                     f"masquerade comment {c}")
    return "\n".join(lines) + "\n"


def _nft_rules_of(prefix: str) -> list[tuple[int, str]]:
    return nftables.handles_with_prefix(nftables.chain_rules("inet", NFT_TABLE, NFT_CHAIN), prefix)


def _setup_nftables(ips: list, network: str, ifname: str, container_id: str) -> None:
    stale = _nft_rules_of(nft_instance_hash(network, ifname, container_id))
    script = nft_script(ips, network, ifname, container_id, [h for h, _ in stale])
    nftables.apply(script, f"ipMasq for {network}/{container_id}")


def _teardown_nftables(network: str, ifname: str, container_id: str) -> None:
    if not nftables.available():
        return
    found = _nft_rules_of(nft_instance_hash(network, ifname, container_id))
    nftables.delete_rules("inet", NFT_TABLE, NFT_CHAIN, [h for h, _ in found], f"{network}/{container_id}")


def _gc_nftables(network: str, valid: set[tuple[str, str]]) -> None:
    """Remove the rules of `network` whose (container ID, ifname) is not in `valid`."""
    if not nftables.available():
        return
    keep = {nft_comment(network, ifname, cid) for cid, ifname in valid}
    found = _nft_rules_of(nft_network_hash(network))
    nftables.delete_rules("inet", NFT_TABLE, NFT_CHAIN, [h for h, c in found if c not in keep], network)


# ---- both --------------------------------------------------------------------------------------
def setup(backend: str | None, ips: list, network: str, ifname: str, container_id: str) -> None:
    """Masquerade traffic from `ips` (IPv4Interface/IPv6Interface) leaving their subnets."""
    if (backend or default_backend()) == "nftables":
        _setup_nftables(ips, network, ifname, container_id)
    else:
        _setup_iptables(ips, network, container_id)


def teardown(network: str, ifname: str, container_id: str, backend: str | None = None) -> None:
    """Remove the attachment's masquerade rules from both backends (either may have made them).

    The failure of the config's backend is the DEL's; the other's is logged (tools.on_both_backends)."""
    on_both_backends({"iptables": lambda: _teardown_iptables(network, container_id),
                      "nftables": lambda: _teardown_nftables(network, ifname, container_id)},
                     backend, "masquerade rules")


def gc(network: str, valid: set[tuple[str, str]]) -> None:
    """Remove masquerade rules of `network` that belong to no attachment in `valid`."""
    valid_ids = {cid for cid, _ in valid}
    every(lambda: _gc_iptables(network, valid_ids), lambda: _gc_nftables(network, valid))
