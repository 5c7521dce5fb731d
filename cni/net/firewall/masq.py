"""bridge's ipMasq: masquerade an attachment's traffic leaving its subnets, on either backend.

The rules are laid out exactly as the reference plugin lays them out (`cni.layout.masq` owns the
names and comments), so that DEL and GC of either plugin find what ADD of either made:

* iptables (`nat` table of iptables and ip6tables): the attachment's chain holding
  `-d <subnet> ACCEPT` and `! -d <multicast> MASQUERADE`, entered from POSTROUTING by
  `-s <ip> -j <chain>`; every rule carries the attachment's comment.
* nftables: table `inet cni_plugins_masquerade`, base chain `postrouting` (nat, srcnat) that
  skips multicast and jumps to `masq_checks`, which holds one commented rule per address.

The chain's name is a hash that two attachments can share, so nothing is emptied or removed by
name alone: ADD creates the chain and, when it exists already, refuses it if its rules record
another attachment; DEL and GC remove a chain only when every rule in it and every jump to it
records the attachments they remove.
"""

from __future__ import annotations

from cni.layout import masq as layout

from . import iptables, nftables
from .tools import FirewallError, FirewallTimeout, NameTaken, default_backend, every, on_both_backends

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cni.layout.iptables_save import Rule

_SKIPPED = "masquerade rules"


# ---- iptables ----------------------------------------------------------------------------------
def iptables_script(ips: list, network: str, container_id: str, new: bool = False) -> str:
    """The iptables-restore batch adding one family's masquerade rules (all `ips` of one family).

    `new`: the chain is created (`-N`), and the whole batch fails, changing nothing, when it exists
    already. Otherwise it is declared, which empties it if it exists, so a repeated ADD leaves one
    set of rules.
    """
    chain = layout.chain_name(network, container_id)
    c = iptables.quote(layout.comment(network, container_id))
    lines = ["*nat", f"-N {chain}" if new else f":{chain} - [0:0]"]
    for ip in ips:
        lines.append(f"-A {chain} -d {ip.network} -m comment --comment {c} -j ACCEPT")
        lines.append(f"-A {chain} ! -d {layout.MULTICAST[ip.version]} -m comment --comment {c} -j MASQUERADE")
    for ip in ips:
        source = f"-s {ip.ip}/{ip.max_prefixlen}"
        lines.append(f"-A {layout.ENTRY_CHAIN} {source} -m comment --comment {c} -j {chain}")
    lines += ["COMMIT", ""]
    return "\n".join(lines)


def _refuse_taken(family: int, network: str, container_id: str) -> None:
    """NameTaken when the attachment's chain records another attachment (its ADD would empty it)."""
    save = iptables.read_nat(family, _SKIPPED) if iptables.available(family) else None
    chain = layout.chain_name(network, container_id)
    others = layout.foreign(layout.chain_owners(save or "").get(chain, []), (network, container_id))
    if others:
        raise NameTaken.chain("ipMasq", chain, (network, container_id), others)


def _setup_iptables(ips: list, network: str, container_id: str) -> None:
    """One batch per family. The usual ADD makes the chain (`-N`) and reads nothing; only when
    that batch fails (the chain exists: a repeated ADD, or a name another attachment holds) is the
    table read for the chain's owner before the chain is emptied and filled again."""
    what = f"ipMasq for {network}/{container_id}"
    for family in (4, 6):
        mine = [ip for ip in ips if ip.version == family]
        if not mine:
            continue
        try:
            iptables.restore(family, iptables_script(mine, network, container_id, new=True), what)
            continue
        except FirewallTimeout:
            raise  # the lock's holder had its bound; another try would wait as long again
        except FirewallError:
            pass  # the chain is there already (or the tool failed, which the next batch reports)
        _refuse_taken(family, network, container_id)
        iptables.restore(family, iptables_script(mine, network, container_id), what)


def _teardown_iptables(network: str, container_id: str) -> None:
    """Remove the attachment's chain and jumps in both families; when another's rules are in the
    chain or jump to it too, only the rules that record this attachment."""
    owner = (network, container_id)
    chain = layout.chain_name(network, container_id)

    def select(save: str) -> set[str]:
        recorded = layout.chain_owners(save).get(chain)
        return {chain} if recorded is not None and not layout.foreign(recorded, owner) else set()

    iptables.remove_chains(select, f"remove ipMasq of {network}/{container_id}", _SKIPPED,
                           also=lambda rule: layout.owned_rule(rule, owner))


def _gc_iptables(network: str, valid_ids: set[str]) -> None:
    """Remove the chains (and jumps) of `network` whose container ID is not in `valid_ids`."""
    def stale(owner: tuple[str, str] | None) -> bool:
        return owner is not None and owner[0] == network and owner[1] not in valid_ids

    def select(save: str) -> set[str]:
        return {chain for chain, recorded in layout.chain_owners(save).items()
                if recorded and all(stale(o) for o in recorded)
                and any(layout.chain_name(*o) == chain for o in recorded if o)}

    def also(rule: Rule) -> bool:
        text = rule.comment()
        owner = layout.parse_comment(text) if text is not None else None
        return owner is not None and stale(owner) and layout.owned_rule(rule, owner)

    iptables.remove_chains(select, f"garbage-collect ipMasq of {network}", _SKIPPED, also=also)


# ---- nftables ----------------------------------------------------------------------------------
def nft_script(ips: list, network: str, ifname: str, container_id: str, stale: list[int]) -> str:
    """The nft batch adding the masquerade rules (and dropping `stale` rule handles first)."""
    t = f"{layout.NFT_FAMILY} {layout.NFT_TABLE}"
    c = nftables.quote(layout.nft_comment(network, ifname, container_id))
    base = layout.NFT_BASE_CHAIN
    lines = [
        f"add table {t} {{ comment {nftables.quote(layout.NFT_TABLE_COMMENT)} ; }}",
        f"add chain {t} {layout.NFT_CHAIN} {{ comment {nftables.quote(layout.NFT_CHAIN_COMMENT)} ; }}",
        f"add chain {t} {base} {{ type nat hook postrouting priority srcnat ; }}",
        f"flush chain {t} {base}",
        f"add rule {t} {base} ip daddr == {layout.MULTICAST[4]} return",
        f"add rule {t} {base} ip6 daddr == {layout.MULTICAST[6]} return",
        f"add rule {t} {base} goto {layout.NFT_CHAIN}",
    ]
    lines += [f"delete rule {t} {layout.NFT_CHAIN} handle {h}" for h in stale]
    for ip in ips:
        fam = "ip" if ip.version == 4 else "ip6"
        lines.append(f"add rule {t} {layout.NFT_CHAIN} {fam} saddr == {ip.ip} {fam} daddr != {ip.network} "
                     f"masquerade comment {c}")
    return "\n".join(lines) + "\n"


def _nft_rules() -> list[tuple[int, str]]:
    """(handle, comment) of every rule of the masquerade chain ([] when it is not there)."""
    rules = nftables.chain_rules(layout.NFT_FAMILY, layout.NFT_TABLE, layout.NFT_CHAIN)
    return [(r["handle"], str(r.get("comment", ""))) for r in rules or []]


def _own_nft_rules(network: str, ifname: str, container_id: str) -> list[int]:
    """The handles of the rules whose comment is exactly this attachment's (a hash prefix is not proof)."""
    mine = layout.nft_comment(network, ifname, container_id)
    return [h for h, c in _nft_rules() if c == mine]


def _setup_nftables(ips: list, network: str, ifname: str, container_id: str) -> None:
    stale = _own_nft_rules(network, ifname, container_id)
    script = nft_script(ips, network, ifname, container_id, stale)
    nftables.apply(script, f"ipMasq for {network}/{container_id}")


def _teardown_nftables(network: str, ifname: str, container_id: str) -> None:
    if not nftables.available():
        return
    found = _own_nft_rules(network, ifname, container_id)
    nftables.delete_rules(layout.NFT_FAMILY, layout.NFT_TABLE, layout.NFT_CHAIN, found,
                          f"{network}/{container_id}")


def _gc_nftables(network: str, valid: set[tuple[str, str]]) -> None:
    """Remove the rules of `network` whose (container ID, ifname) is not in `valid`."""
    if not nftables.available():
        return
    keep = {layout.nft_comment(network, ifname, cid) for cid, ifname in valid}
    prefix = layout.nft_network_hash(network) + "-"
    stale = [h for h, c in _nft_rules() if c.startswith(prefix) and c not in keep and _names(c, network)]
    nftables.delete_rules(layout.NFT_FAMILY, layout.NFT_TABLE, layout.NFT_CHAIN, stale, network)


def _names(comment: str, network: str) -> bool:
    """False when the comment records another network (one whose hash shares its prefix); a
    comment cut before its fields (a very long network name) goes by its hash."""
    recorded = layout.parse_nft_comment(comment)
    return recorded is None or recorded[0] == network.replace('"', "")


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
