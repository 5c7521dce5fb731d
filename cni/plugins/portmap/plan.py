"""portmap's rules, laid out as the reference portmap lays them out, as pure functions over data.

What the rules are called and how they are recognised again (chain names, comments, the nft
tables and the owner markers) is cni.layout.portmap's; here is what the rules say:

iptables (`nat` table of iptables and ip6tables; rules written in the form iptables-save prints,
so that a read-back compares line by line):

    PREROUTING, OUTPUT    -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT
    CNI-HOSTPORT-DNAT     -p <proto> -m comment --comment "dnat name: ..." -m multiport
                          --dports <up to 15 ports> [conditions] -j CNI-DN-<hash>
    CNI-DN-<hash>         per mapping: [-s <subnet> -j SETMARK] [-s 127.0.0.1 -j SETMARK (IPv4)]
                          -j DNAT --to-destination <ip>:<port>
    CNI-HOSTPORT-SETMARK  -j MARK --set-xmark <bit>/<bit>
    POSTROUTING (first)   -j CNI-HOSTPORT-MASQ, which masquerades packets with the mark

nftables (tables `ip cni_hostport` and `ip6 cni_hostport`): base chains `prerouting` and `output`
jump, for local destinations, to `hostports_all`, which jumps to `hostip_hostports` (kept for the
reference's older versions) and `hostports`; `hostports` holds one DNAT rule per mapping and
`masquerading` (postrouting) the hairpin and localhost masquerades, every rule commented with the
bare container ID, as the reference comments them; the attachment's marker goes to its network's
owner chain.
"""

from __future__ import annotations

from cni.layout.iptables_save import chains as saved_chains
from cni.layout.iptables_save import quote
from cni.layout.iptables_save import rules as saved_rules
from cni.layout.portmap import (
    DNAT_CHAIN,
    MASQ_CHAIN,
    MASQ_COMMENT,
    NFT_FAMILY,
    NFT_TABLE,
    NFT_TABLE_COMMENT,
    SETMARK_CHAIN,
    SETMARK_COMMENT,
    comment,
    dnat_chain,
    nft_marker_comment,
    nft_owner_chain,
)
from cni.net.firewall.nftables import quote as nft_quote

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from .config import Mapping, PortMapConf

MULTIPORT_MAX = 15
LOCAL_ENTRY = "-m addrtype --dst-type LOCAL"
ANY = {4: "0.0.0.0/0", 6: "::/0"}
HOST_MAX_PREFIX = {4: 32, 6: 128}


# ---- names -----------------------------------------------------------------------------------
def mark(bit: int) -> str:
    value = 1 << bit
    return f"{value:#x}/{value:#x}"


def host_port_groups(mappings: list[Mapping]) -> list[tuple[str, str]]:
    """(protocol, "p1,p2,...") multiport groups: at most 15 ports a group, in the mappings' order
    (every mapping, whatever its hostIP's family). As the reference v1.9.1 groups them: by the
    protocol as written, in byte order ("SCTP" and "sctp" are two groups, "SCTP" first)."""
    by_proto: dict[str, list[int]] = {}
    lower: dict[str, str] = {}
    for m in mappings:
        key = m.group or m.protocol
        by_proto.setdefault(key, []).append(m.host_port)
        lower[key] = m.protocol
    out = []
    for key in sorted(by_proto):
        ports = by_proto[key]
        for i in range(0, len(ports), MULTIPORT_MAX):
            out.append((lower[key], ",".join(str(p) for p in ports[i:i + MULTIPORT_MAX])))
    return out


# ---- iptables ----------------------------------------------------------------------------------
class IptablesPlan:
    """One family's rules for one container, each as `<chain> <rule>` (what follows `-A `)."""

    __slots__ = ("family", "chain", "shared", "entries", "rules", "conditions")

    def __init__(self, family: int, chain: str, shared: list[tuple[str, str, bool]], entries: list[str],
                 rules: list[str], conditions: bool) -> None:
        self.family = family
        self.chain = chain
        self.shared = shared  # (chain, rule, insert first): the chains all containers share
        self.entries = entries  # CNI-HOSTPORT-DNAT -> this chain
        self.rules = rules  # this chain's own
        self.conditions = conditions  # entries carry the config's conditions (not in saved form)


def _ipt_args(words: Iterable[str]) -> str:
    return " ".join(w if w and not any(c.isspace() or c in "\"'" for c in w) else quote(w) for w in words)


def iptables_plan(conf: PortMapConf, container_id: str, family: int, address: object) -> IptablesPlan:
    """The reference's rules for the container address `address` (an ip_interface) of `family`."""
    chain = dnat_chain(conf.name, container_id)
    setmark = conf.external_mark_chain or SETMARK_CHAIN
    shared: list[tuple[str, str, bool]] = []
    if conf.snat and conf.external_mark_chain is None:
        shared.append((SETMARK_CHAIN, f"-m comment --comment {quote(SETMARK_COMMENT)} -j MARK "
                       f"--set-xmark {mark(conf.mark_bit)}", False))
        shared.append((MASQ_CHAIN, f"-m mark --mark {mark(conf.mark_bit)} -j MASQUERADE", False))
        shared.append(("POSTROUTING", f"-m comment --comment {quote(MASQ_COMMENT)} -j {MASQ_CHAIN}", True))
    shared.append(("PREROUTING", f"{LOCAL_ENTRY} -j {DNAT_CHAIN}", False))
    shared.append(("OUTPUT", f"{LOCAL_ENTRY} -j {DNAT_CHAIN}", False))
    c = quote(comment(conf.name, container_id))
    extra = _ipt_args(conf.conditions[family])
    entries = [f"{DNAT_CHAIN} -p {proto} -m comment --comment {c} -m multiport --dports {ports}"
               + (f" {extra}" if extra else "") + f" -j {chain}"
               for proto, ports in host_port_groups(conf.mappings)]
    subnet = ANY[family] if conf.masq_all else str(address.network)  # type: ignore[attr-defined]
    ip = address.ip  # type: ignore[attr-defined]
    target = f"[{ip}]" if family == 6 else str(ip)
    rules = []
    for m in conf.mappings:
        if not m.applies_to(family):
            continue
        dst = f"-d {m.host_ip}/{HOST_MAX_PREFIX[family]} " if m.host_ip else ""
        match = f"-p {m.protocol} -m {m.protocol} --dport {m.host_port}"
        if conf.snat:
            src = "" if conf.masq_all else f"-s {subnet} "  # iptables-save leaves out 0.0.0.0/0
            rules.append(f"{chain} {src}{dst}{match} -j {setmark}")
            if family == 4 and not conf.masq_all:
                rules.append(f"{chain} -s 127.0.0.1/32 {dst}{match} -j {setmark}")
        rules.append(f"{chain} {dst}{match} -j DNAT --to-destination {target}:{m.container_port}")
    return IptablesPlan(family, chain, shared, entries, rules, bool(extra))


def iptables_add_script(plan: IptablesPlan, save_text: str) -> str:
    """The iptables-restore batch installing `plan` on top of the current nat table.

    Shared chains are made with `-N` only when missing (declaring an existing chain would empty it
    under --noflush): a concurrent ADD that made one first fails the batch, which the caller then
    retries on a fresh read. Their rules are added only when missing, as the reference adds them.
    The container's own chain is declared, which empties it, and its old entries are deleted, so
    a repeated ADD leaves exactly one set of rules.
    """
    chains = set(saved_chains(save_text))
    rules = saved_rules(save_text)
    present = {r.spec for r in rules}
    lines = ["*nat"]
    needed = [c for c in (SETMARK_CHAIN, MASQ_CHAIN) if any(s[0] == c for s in plan.shared)]
    lines += [f"-N {name}" for name in [*needed, DNAT_CHAIN] if name not in chains]
    for chain, rule, first in plan.shared:
        if f"{chain} {rule}" not in present:
            lines.append(f"-I {chain} 1 {rule}" if first else f"-A {chain} {rule}")
    lines.append(f":{plan.chain} - [0:0]")
    lines += [f"-D {r.spec}" for r in rules
              if r.chain == DNAT_CHAIN and plan.chain in r.spec and r.target() == plan.chain]
    lines += [f"-A {r}" for r in plan.rules]
    lines += [f"-A {r}" for r in plan.entries]
    lines += ["COMMIT", ""]
    return "\n".join(lines)


def iptables_missing(plan: IptablesPlan, save_text: str) -> list[str]:
    """The rules of `plan` that the nat table lacks (CHECK); conditions make an entry match by
    its protocol, ports and target only, since iptables prints them in its own way."""
    rules = saved_rules(save_text)
    present = {r.spec for r in rules}
    missing = [f"chain {plan.chain}"] if plan.chain not in saved_chains(save_text) else []
    missing += [f"{c} {r}" for c, r, _ in plan.shared if f"{c} {r}" not in present]
    missing += [r for r in plan.rules if r not in present]
    for entry in plan.entries:
        if plan.conditions:
            proto = entry.split(" -p ", 1)[1].split()[0]
            tag = entry.split(" -m comment ", 1)[1].split(" -m multiport ")[0]
            ports = entry.split(" --dports ", 1)[1].split()[0]
            if not any(r.chain == DNAT_CHAIN and f" -p {proto} " in r.spec and tag in r.spec
                       and f"--dports {ports} " in r.spec and r.target() == plan.chain for r in rules):
                missing.append(entry)
        elif entry not in present:
            missing.append(entry)
    return missing


# ---- nftables ----------------------------------------------------------------------------------
def nft_add_script(conf: PortMapConf, container_id: str, ifname: str, family: int, address: object,
                   stale: list[tuple[str, int]]) -> str:
    """The nft batch installing one family's rules (after deleting `stale` (chain, handle)s: this
    attachment's rules of an earlier ADD), as the reference's knftables transaction builds them,
    and the attachment's marker in the network's owner chain (cni.layout.portmap)."""
    fam = NFT_FAMILY[family]
    t = f"{fam} {NFT_TABLE}"
    cid = nft_quote(container_id)
    conds = " ".join(conf.conditions[family])
    conds = conds + " " if conds else ""
    lines = [
        f"add table {t} {{ comment {nft_quote(NFT_TABLE_COMMENT)} ; }}",
        f"add chain {t} hostports",
        f"add chain {t} hostip_hostports",
        f"add chain {t} hostports_all",
        f"flush chain {t} hostports_all",
        f"add rule {t} hostports_all jump hostip_hostports",
        f"add rule {t} hostports_all jump hostports",
        f"add chain {t} prerouting {{ type nat hook prerouting priority dstnat ; }}",
        f"flush chain {t} prerouting",
        f"add rule {t} prerouting {conds}fib daddr type local jump hostports_all",
        f"add chain {t} output {{ type nat hook output priority -100 ; }}",
        f"flush chain {t} output",
        f"add rule {t} output {conds}fib daddr type local jump hostports_all",
    ]
    if conf.snat:
        lines.append(f"add chain {t} masquerading {{ type nat hook postrouting priority srcnat ; }}")
    owner = nft_owner_chain(conf.name)
    lines.append(f"add chain {t} {owner}")
    lines += [f"delete rule {t} {chain} handle {h}" for chain, h in stale]
    ip = address.ip  # type: ignore[attr-defined]
    target = f"[{ip}]" if family == 6 else str(ip)
    for m in conf.mappings:
        if not m.applies_to(family):
            continue
        dst = f"{fam} daddr {m.host_ip} " if m.host_ip else ""
        lines.append(f"add rule {t} hostports {dst}{m.protocol} dport {m.host_port} "
                     f"dnat to {target}:{m.container_port} comment {cid}")
    if conf.snat:
        # the container's subnet, as the iptables layout has it: the reference's nft layout takes only
        # the container itself, which leaves another pod reaching it through the hostPort unanswered
        # unless bridged traffic passes netfilter (br_netfilter)
        src = ANY[family] if conf.masq_all else str(address.network)  # type: ignore[attr-defined]
        lines.append(f"add rule {t} masquerading {fam} saddr {src} {fam} daddr {ip} masquerade comment {cid}")
        if family == 4 and not conf.masq_all:
            lines.append(f"add rule {t} masquerading ip saddr 127.0.0.1 ip daddr {ip} masquerade "
                         f"comment {cid}")
    # the marker: which attachment of this container ID the rules to this address belong to
    marker = nft_quote(nft_marker_comment(container_id, ifname))
    lines.append(f"add rule {t} {owner} {fam} daddr {ip} counter comment {marker}")
    return "\n".join(lines) + "\n"


def nft_expected(conf: PortMapConf, family: int, address: object) -> set[tuple[str, int, str, str, int]]:
    ip = str(address.ip)  # type: ignore[attr-defined]
    return {(m.protocol, m.host_port, m.host_ip, ip, m.container_port)
            for m in conf.mappings if m.applies_to(family)}


def nft_masquerades(conf: PortMapConf, family: int) -> int:
    if not conf.snat:
        return 0
    return 2 if family == 4 and not conf.masq_all else 1
