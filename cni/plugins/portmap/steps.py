"""portmap's kernel steps: the rules through the firewall backends, conntrack.

The layouts come from `plan`; here they are read from and written to the kernel. Every function
speaks FirewallError or OSError; the verbs turn those into CNI errors.
"""

from __future__ import annotations

import sys

from cni.layout import portmap as layout
from cni.net.firewall import iptables, nftables
from cni.net.firewall.tools import FirewallError, FirewallTimeout, NameTaken, every, on_both_backends

from . import plan

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from cni.net.nfexists import Probe

    from .config import PortMapConf

PLUGIN = "portmap"
_SKIPPED = "hostport rules"
ATTEMPTS = 3  # an iptables batch loses to a concurrent ADD that made a shared chain first


# ---- iptables ----------------------------------------------------------------------------------
def iptables_setup(conf: PortMapConf, container_id: str, family: int, address: object) -> None:
    p = plan.iptables_plan(conf, container_id, family, address)
    what = f"hostports of {conf.name}/{container_id}"
    # Two first ADDs on a node would each see the shared jumps missing and each append one: the
    # read (save) and the write (restore) happen under one node-wide lock.
    from cni.flock import node_lock

    with node_lock("portmap"):
        for attempt in range(1, ATTEMPTS + 1):
            save_text = iptables.save(family)
            _refuse_foreign(save_text, conf.name, container_id)
            script = plan.iptables_add_script(p, save_text)
            try:
                iptables.restore(family, script, what)
                return
            except FirewallTimeout:
                raise  # the lock's holder had its bound; another try would wait as long again
            except FirewallError:
                if attempt == ATTEMPTS:
                    raise


def _refuse_foreign(save_text: str, network: str, container_id: str) -> None:
    """The chain named for this attachment is another's when its entries name another owner (the
    name hashes network and ID run together): declaring it would empty that attachment's rules."""
    others = layout.foreign_owners(save_text, network, container_id)
    if others:
        raise NameTaken.chain("hostport", layout.dnat_chain(network, container_id), (network, container_id),
                              others)


def iptables_teardown(network: str, container_id: str) -> dict[int, set[int]]:
    """Remove the container's chains (and their jumps) in both families; the UDP host ports they
    forwarded, by family. Found by name (no mapping is needed: DEL without runtimeConfig), and
    left alone when its entries name another owner (a name both hash to)."""
    ports: dict[int, set[int]] = {}

    def select(family: int):
        def pick(save_text: str) -> set[str]:
            chains = {layout.old_snat_chain(network, container_id)}
            dnat = layout.dnat_chain(network, container_id)
            if layout.foreign_owners(save_text, network, container_id):
                sys.stderr.write(f"{PLUGIN}: {dnat} left alone: its entry rules name another attachment\n")
            else:
                chains.add(dnat)
            ports[family] = layout.udp_ports_of_chains(save_text, chains)
            return chains
        return pick

    what = f"remove hostports of {network}/{container_id}"
    entries = (layout.DNAT_CHAIN, layout.OLD_SNAT_CHAIN)
    named = (layout.dnat_chain(network, container_id), layout.old_snat_chain(network, container_id))
    families: tuple[int, ...] = (4, 6)
    if iptables.in_nf_tables():  # no chain of that name: nothing to read or remove
        families = _may_hold(lambda probe, fam: any(probe.chain(fam, "nat", c) for c in named))
    every(*[(lambda f=f: iptables.remove_chains(select(f), what, _SKIPPED, entries, PLUGIN, (f,)))
            for f in families])
    return ports


def iptables_check(conf: PortMapConf, container_id: str, family: int, address: object) -> list[str]:
    p = plan.iptables_plan(conf, container_id, family, address)
    return plan.iptables_missing(p, iptables.save(family))


def iptables_gc(network: str, valid_ids: set[str]) -> None:
    def stale(save_text: str) -> set[str]:
        return {chain for chain, (net, cid) in layout.iptables_owners(save_text).items()
                if net == network and cid not in valid_ids}

    iptables.remove_chains(stale, f"garbage-collect hostports of {network}", _SKIPPED,
                           layout.DNAT_CHAIN, PLUGIN)


def _may_hold(question: Callable[[Probe, str], bool]) -> tuple[int, ...]:
    """The families (4, 6) whose tables may hold rules of an attachment: those for which
    `question(probe, "ip" or "ip6")` is true, asked over netlink, or both when nf_tables cannot be
    asked (the tables are then read as always)."""
    from cni.net.nfexists import Probe

    try:
        with Probe() as probe:
            return tuple(f for f in (4, 6) if question(probe, layout.NFT_FAMILY[f]))
    except OSError:
        return (4, 6)


# ---- nftables ----------------------------------------------------------------------------------
def _nft_rules(family: int) -> list[dict] | None:
    text = nftables.listing("table", layout.NFT_FAMILY[family], layout.NFT_TABLE)
    return None if text is None else layout.nft_items(nftables.items_of(text))


def _nft_delete(family: int, doomed: list[tuple[str, int]], what: str) -> None:
    if doomed:
        t = f"{layout.NFT_FAMILY[family]} {layout.NFT_TABLE}"
        nftables.apply("".join(f"delete rule {t} {c} handle {h}\n" for c, h in doomed), what)


def nft_setup(conf: PortMapConf, container_id: str, ifname: str, family: int, address: object) -> None:
    from cni.flock import node_lock

    ip = str(address.ip)  # type: ignore[attr-defined]
    with node_lock("portmap"):  # the read and the write of the shared chains, as iptables_setup
        stale = layout.nft_attachment(_nft_rules(family) or [], conf.name, container_id, ifname, ip)
        nftables.apply(plan.nft_add_script(conf, container_id, ifname, family, address, stale),
                       f"hostports of {conf.name}/{container_id}")


def nft_teardown(network: str, container_id: str, ifname: str) -> dict[int, set[int]]:
    """Remove the attachment's rules and marker in both tables; the UDP ports they forwarded."""
    ports: dict[int, set[int]] = {}
    if not nftables.available():
        return ports
    for family in _may_hold(lambda probe, fam: probe.table(fam, layout.NFT_TABLE)):
        rules = _nft_rules(family)
        if not rules:
            continue
        mine = set(layout.nft_attachment(rules, network, container_id, ifname))
        ports[family] = {f[1] for r in rules if (r["chain"], r["handle"]) in mine
                         for f in [layout.nft_forward(r)] if f and f[0] == "udp"}
        _nft_delete(family, sorted(mine), f"remove hostports of {network}/{container_id}")
    return ports


def nft_check(conf: PortMapConf, container_id: str, family: int, address: object) -> list[str]:
    rules = layout.nft_of_address(_nft_rules(family) or [], container_id, str(address.ip))  # type: ignore[attr-defined]
    found = {layout.nft_forward(r) for r in rules if r.get("chain") in ("hostports", "hostip_hostports")}
    missing = [f"{p} dport {port} to {ip}:{to}" for p, port, _, ip, to in
               sorted(plan.nft_expected(conf, family, address) - found)]
    masq = sum(1 for r in rules if r.get("chain") == "masquerading")
    if masq < plan.nft_masquerades(conf, family):
        missing.append(f"masquerading rules ({masq} of {plan.nft_masquerades(conf, family)})")
    return missing


def nft_gc(network: str, valid: set[tuple[str, str]]) -> None:
    """Remove the rules of the attachments this network's marker chain lists and GC does not (an
    older pycni's marker names the container ID only: valid when any attachment has that ID)."""
    if not nftables.available():
        return
    valid_ids = {cid for cid, _ in valid}
    for family in (4, 6):
        rules = _nft_rules(family) or []
        doomed: set[tuple[str, int]] = set()
        for cid, ifname in sorted(layout.nft_marked(rules, network), key=str):
            if (cid, ifname) not in valid and (ifname is not None or cid not in valid_ids):
                doomed |= set(layout.nft_attachment(rules, network, cid, ifname))
        _nft_delete(family, sorted(doomed), f"garbage-collect hostports of {network}")


# ---- both --------------------------------------------------------------------------------------
def setup(conf: PortMapConf, container_id: str, ifname: str, family: int, address: object) -> None:
    if conf.backend == "nftables":
        nft_setup(conf, container_id, ifname, family, address)
    else:
        iptables_setup(conf, container_id, family, address)


def teardown(network: str, container_id: str, ifname: str, backend: str | None = None,
             ) -> dict[int, set[int]]:
    """Remove the attachment's rules from both backends (either may have made them).

    The failure of `backend` is the caller's; the other's is logged (tools.on_both_backends)."""
    ports: dict[int, set[int]] = {4: set(), 6: set()}

    def merge(found: dict[int, set[int]]) -> None:
        for family, p in found.items():
            ports[family] |= p

    on_both_backends({"iptables": lambda: merge(iptables_teardown(network, container_id)),
                      "nftables": lambda: merge(nft_teardown(network, container_id, ifname))},
                     backend, "hostports")
    return ports


def check(conf: PortMapConf, container_id: str, family: int, address: object) -> list[str]:
    if conf.backend == "nftables":
        return nft_check(conf, container_id, family, address)
    return iptables_check(conf, container_id, family, address)


def gc(network: str, valid: set[tuple[str, str]]) -> None:
    """`valid`: the (container ID, ifname) attachments GC keeps."""
    every(lambda: iptables_gc(network, {cid for cid, _ in valid}), lambda: nft_gc(network, valid))


def usable(backend: str) -> bool:
    return nftables.available() if backend == "nftables" else iptables.available(4) or iptables.available(6)


# ---- the host around the rules ------------------------------------------------------------------
def flush_udp(ports: dict[int, set[int]]) -> None:
    """Delete the UDP conntrack entries to these host ports, so that flows pinned to an earlier
    DNAT target follow the current rules at once. Failures are logged, as the reference does."""
    from cni.net import conntrack

    for family, found in sorted(ports.items()):
        if not found:
            continue
        try:
            conntrack.delete_by_dst_port(family, "udp", found)
        except OSError as e:
            sys.stderr.write(f"{PLUGIN}: failed to delete stale UDP conntrack entries (IPv{family}): {e}\n")
