"""portmap's kernel steps: the rules through the firewall backends, route_localnet, conntrack.

The layouts come from `plan`; here they are read from and written to the kernel. Every function
speaks FirewallError or OSError; the verbs turn those into CNI errors.
"""

from __future__ import annotations

import sys

from cni.net.firewall import iptables, nftables
from cni.net.firewall.tools import FirewallError, FirewallTimeout, every, on_both_backends

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
            script = plan.iptables_add_script(p, iptables.save(family))
            try:
                iptables.restore(family, script, what)
                return
            except FirewallTimeout:
                raise  # the lock's holder had its bound; another try would wait as long again
            except FirewallError:
                if attempt == ATTEMPTS:
                    raise


def iptables_teardown(network: str, container_id: str) -> dict[int, set[int]]:
    """Remove the container's chains (and their jumps) in both families; the UDP host ports they
    forwarded, by family. Found by name alone: no mapping is needed (DEL without runtimeConfig)."""
    chains = {plan.dnat_chain(network, container_id), plan.old_snat_chain(network, container_id)}
    ports: dict[int, set[int]] = {}

    def select(family: int):
        def pick(save_text: str) -> set[str]:
            ports[family] = plan.udp_ports_of_chains(save_text, chains)
            return chains
        return pick

    what = f"remove hostports of {network}/{container_id}"
    entries = (plan.DNAT_CHAIN, plan.OLD_SNAT_CHAIN)
    families = (4, 6)
    if iptables.in_nf_tables():  # no chain of the container: nothing to read or remove
        families = _may_hold(lambda probe, fam: any(probe.chain(fam, "nat", c) for c in chains))
    every(*[(lambda f=f: iptables.remove_chains(select(f), what, _SKIPPED, entries, PLUGIN, (f,)))
            for f in families])
    return ports


def iptables_check(conf: PortMapConf, container_id: str, family: int, address: object) -> list[str]:
    p = plan.iptables_plan(conf, container_id, family, address)
    return plan.iptables_missing(p, iptables.save(family))


def iptables_gc(network: str, valid_ids: set[str]) -> None:
    def stale(save_text: str) -> set[str]:
        return {chain for chain, (net, cid) in plan.iptables_owners(save_text).items()
                if net == network and cid not in valid_ids}

    iptables.remove_chains(stale, f"garbage-collect hostports of {network}", _SKIPPED,
                           plan.DNAT_CHAIN, PLUGIN)


def _may_hold(question: Callable[[Probe, str], bool]) -> tuple[int, ...]:
    """The families (4, 6) whose tables may hold rules of an attachment: those for which
    `question(probe, "ip" or "ip6")` is true, asked over netlink, or both when nf_tables cannot be
    asked (the tables are then read as always)."""
    from cni.net.nfexists import Probe

    try:
        with Probe() as probe:
            return tuple(f for f in (4, 6) if question(probe, plan.NFT_FAMILY[f]))
    except OSError:
        return (4, 6)


# ---- nftables ----------------------------------------------------------------------------------
def _nft_rules(family: int) -> list[dict] | None:
    text = nftables.listing("table", plan.NFT_FAMILY[family], plan.NFT_TABLE)
    return None if text is None else plan.nft_items(nftables.items_of(text))


def nft_setup(conf: PortMapConf, container_id: str, family: int, address: object) -> None:
    from cni.flock import node_lock

    chains = (*plan.NFT_RULE_CHAINS, plan.nft_owner_chain(conf.name))
    with node_lock("portmap"):  # the read and the write of the shared chains, as iptables_setup
        stale = plan.nft_rules_of(_nft_rules(family) or [], container_id, chains)
        nftables.apply(plan.nft_add_script(conf, container_id, family, address, stale),
                       f"hostports of {conf.name}/{container_id}")


def nft_teardown(network: str, container_id: str) -> dict[int, set[int]]:
    """Remove the rules commented with the container ID in both tables; the UDP ports they forwarded."""
    ports: dict[int, set[int]] = {}
    if not nftables.available():
        return ports
    chains = (*plan.NFT_RULE_CHAINS, plan.nft_owner_chain(network))
    for family in _may_hold(lambda probe, fam: probe.table(fam, plan.NFT_TABLE)):
        rules = _nft_rules(family)
        if not rules:
            continue
        mine = plan.nft_rules_of(rules, container_id, chains)
        ports[family] = {f[1] for r in rules if (r["chain"], r["handle"]) in set(mine)
                         for f in [plan.nft_forward(r)] if f and f[0] == "udp"}
        t = f"{plan.NFT_FAMILY[family]} {plan.NFT_TABLE}"
        if mine:
            nftables.apply("".join(f"delete rule {t} {c} handle {h}\n" for c, h in mine),
                           f"remove hostports of {network}/{container_id}")
    return ports


def nft_check(conf: PortMapConf, container_id: str, family: int, address: object) -> list[str]:
    rules = [r for r in _nft_rules(family) or [] if r.get("comment") == container_id]
    found = {plan.nft_forward(r) for r in rules if r.get("chain") in ("hostports", "hostip_hostports")}
    missing = [f"{p} dport {port} to {ip}:{to}" for p, port, _, ip, to in
               sorted(plan.nft_expected(conf, family, address) - found)]
    masq = sum(1 for r in rules if r.get("chain") == "masquerading")
    if masq < plan.nft_masquerades(conf, family):
        missing.append(f"masquerading rules ({masq} of {plan.nft_masquerades(conf, family)})")
    return missing


def nft_gc(network: str, valid_ids: set[str]) -> None:
    """Remove the rules of container IDs that this network's marker chain lists and GC does not."""
    if not nftables.available():
        return
    owner = plan.nft_owner_chain(network)
    for family in (4, 6):
        rules = _nft_rules(family) or []
        stale = {r.get("comment") for r in rules if r.get("chain") == owner} - valid_ids - {None}
        doomed = [(c, h) for cid in sorted(stale)
                  for c, h in plan.nft_rules_of(rules, cid, (*plan.NFT_RULE_CHAINS, owner))]
        if doomed:
            t = f"{plan.NFT_FAMILY[family]} {plan.NFT_TABLE}"
            nftables.apply("".join(f"delete rule {t} {c} handle {h}\n" for c, h in doomed),
                           f"garbage-collect hostports of {network}")


# ---- both --------------------------------------------------------------------------------------
def setup(conf: PortMapConf, container_id: str, family: int, address: object) -> None:
    if conf.backend == "nftables":
        nft_setup(conf, container_id, family, address)
    else:
        iptables_setup(conf, container_id, family, address)


def teardown(network: str, container_id: str, backend: str | None = None) -> dict[int, set[int]]:
    """Remove the attachment's rules from both backends (either may have made them).

    The failure of `backend` is the caller's; the other's is logged (tools.on_both_backends)."""
    ports: dict[int, set[int]] = {4: set(), 6: set()}

    def merge(found: dict[int, set[int]]) -> None:
        for family, p in found.items():
            ports[family] |= p

    on_both_backends({"iptables": lambda: merge(iptables_teardown(network, container_id)),
                      "nftables": lambda: merge(nft_teardown(network, container_id))},
                     backend, "hostports")
    return ports


def check(conf: PortMapConf, container_id: str, family: int, address: object) -> list[str]:
    if conf.backend == "nftables":
        return nft_check(conf, container_id, family, address)
    return iptables_check(conf, container_id, family, address)


def gc(network: str, valid_ids: set[str]) -> None:
    every(lambda: iptables_gc(network, valid_ids), lambda: nft_gc(network, valid_ids))


def usable(backend: str) -> bool:
    return nftables.available() if backend == "nftables" else iptables.available(4) or iptables.available(6)


# ---- the host around the rules ------------------------------------------------------------------
def enable_route_localnet(container_ip: object) -> None:
    """route_localnet on the interface that routes to the container, so that 127.0.0.1:hostPort,
    DNATed to the container, may leave through it (as the reference; IPv4 only: no ::1)."""
    from cni.net import link, route, sysctl
    from cni.net.netlink import Handle

    with Handle() as h:
        best = None
        for r in route.list_routes(h, 4):
            if r.oif and container_ip in r.dst and (best is None or r.dst.prefixlen > best.dst.prefixlen):
                best = r
        if best is None:
            return
        dev = link.get_link(h, best.oif)
    if dev is not None:
        sysctl.write(sysctl.conf_key("ipv4", dev.name, "route_localnet"), 1)


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
