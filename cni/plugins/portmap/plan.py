"""portmap's rules, laid out as the reference portmap lays them out, as pure functions over data.

Names and comments derive from (network, container ID) exactly as the reference derives them, so
that either implementation's DEL, CHECK and GC find what the other's ADD made.

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
bare container ID, as the reference comments them. One more chain, `pycni_owners_<net hash>`,
never jumped to, holds a marker rule per container ID: the reference's comments do not name the
network, and GC of one network must not remove another network's rules.
"""

from __future__ import annotations

from cni.names import hashed_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    from .config import Mapping, PortMapConf

DNAT_CHAIN = "CNI-HOSTPORT-DNAT"
SETMARK_CHAIN = "CNI-HOSTPORT-SETMARK"
MASQ_CHAIN = "CNI-HOSTPORT-MASQ"
OLD_SNAT_CHAIN = "CNI-HOSTPORT-SNAT"
MAX_CHAIN = 28
MAX_COMMENT = 255
MULTIPORT_MAX = 15
LOCAL_ENTRY = "-m addrtype --dst-type LOCAL"
SETMARK_COMMENT = "CNI portfwd masquerade mark"
MASQ_COMMENT = "CNI portfwd requiring masquerade"
ANY = {4: "0.0.0.0/0", 6: "::/0"}
HOST_MAX_PREFIX = {4: 32, 6: 128}

NFT_TABLE = "cni_hostport"
NFT_FAMILY = {4: "ip", 6: "ip6"}
NFT_TABLE_COMMENT = "CNI portmap plugin"
NFT_RULE_CHAINS = ("hostports", "hostip_hostports", "masquerading")


# ---- names -----------------------------------------------------------------------------------
def dnat_chain(network: str, container_id: str) -> str:
    """`CNI-DN-` + sha512(network + container ID), 28 characters: the per-container chain."""
    return hashed_name("CNI-DN-", network + container_id, MAX_CHAIN)


def old_snat_chain(network: str, container_id: str) -> str:
    """The per-container chain of old reference versions; still removed by DEL."""
    return hashed_name("CNI-SN-", network + container_id, MAX_CHAIN)


def comment(network: str, container_id: str) -> str:
    """`dnat name: "<net>" id: "<cid>"`, cut as the reference cuts it (iptables allows 255)."""
    text = f'dnat name: "{network}" id: "{container_id}"'
    return text if len(text) <= MAX_COMMENT else text[:MAX_COMMENT - 2] + "..."


def parse_comment(text: str) -> tuple[str, str] | None:
    """(network, container ID) of an uncut `dnat name: "<net>" id: "<cid>"`, else None."""
    head, sep, tail = text.partition('" id: "')
    if not sep or not head.startswith('dnat name: "') or not tail.endswith('"'):
        return None
    return head[len('dnat name: "'):], tail[:-1]


def nft_owner_chain(network: str) -> str:
    return "pycni_owners_" + hashed_name("", network, 16)


def mark(bit: int) -> str:
    value = 1 << bit
    return f"{value:#x}/{value:#x}"


def quote(text: str) -> str:
    """Quoted as iptables-save prints a comment."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


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


def save_rules(save_text: str) -> tuple[set[str], list[str]]:
    """(chains declared, `-A` rules without the `-A `) of the nat table in iptables-save output."""
    chains: set[str] = set()
    rules: list[str] = []
    table = None
    for line in save_text.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
        elif table == "nat" and line.startswith(":"):
            chains.add(line[1:].split(" ", 1)[0])
        elif table == "nat" and line.startswith("-A "):
            rules.append(line[3:])
    return chains, rules


def _jumps_to(rule: str, chain: str) -> bool:
    words = rule.split()
    return len(words) >= 2 and words[-2] in ("-j", "-g") and words[-1] == chain


def iptables_add_script(plan: IptablesPlan, save_text: str) -> str:
    """The iptables-restore batch installing `plan` on top of the current nat table.

    Shared chains are made with `-N` only when missing (declaring an existing chain would empty it
    under --noflush): a concurrent ADD that made one first fails the batch, which the caller then
    retries on a fresh read. Their rules are added only when missing, as the reference adds them.
    The container's own chain is declared, which empties it, and its old entries are deleted, so
    a repeated ADD leaves exactly one set of rules.
    """
    chains, rules = save_rules(save_text)
    present = set(rules)
    lines = ["*nat"]
    needed = [c for c in (SETMARK_CHAIN, MASQ_CHAIN) if any(s[0] == c for s in plan.shared)]
    lines += [f"-N {name}" for name in [*needed, DNAT_CHAIN] if name not in chains]
    for chain, rule, first in plan.shared:
        if f"{chain} {rule}" not in present:
            lines.append(f"-I {chain} 1 {rule}" if first else f"-A {chain} {rule}")
    lines.append(f":{plan.chain} - [0:0]")
    lines += [f"-D {r}" for r in rules if r.startswith(DNAT_CHAIN + " ") and _jumps_to(r, plan.chain)]
    lines += [f"-A {r}" for r in plan.rules]
    lines += [f"-A {r}" for r in plan.entries]
    lines += ["COMMIT", ""]
    return "\n".join(lines)


def iptables_missing(plan: IptablesPlan, save_text: str) -> list[str]:
    """The rules of `plan` that the nat table lacks (CHECK); conditions make an entry match by
    its protocol, ports and target only, since iptables prints them in its own way."""
    chains, rules = save_rules(save_text)
    present = set(rules)
    missing = [f"chain {plan.chain}"] if plan.chain not in chains else []
    missing += [f"{c} {r}" for c, r, _ in plan.shared if f"{c} {r}" not in present]
    missing += [r for r in plan.rules if r not in present]
    for entry in plan.entries:
        if plan.conditions:
            proto = entry.split(" -p ", 1)[1].split()[0]
            tag = entry.split(" -m comment ", 1)[1].split(" -m multiport ")[0]
            ports = entry.split(" --dports ", 1)[1].split()[0]
            if not any(r.startswith(DNAT_CHAIN + " ") and f" -p {proto} " in r and tag in r
                       and f"--dports {ports} " in r and _jumps_to(r, plan.chain) for r in rules):
                missing.append(entry)
        elif entry not in present:
            missing.append(entry)
    return missing


def udp_ports_of_chains(save_text: str, chains: set[str]) -> set[int]:
    """The UDP host ports the DNAT rules of `chains` forward (what DEL flushes from conntrack)."""
    _, rules = save_rules(save_text)
    out = set()
    for rule in rules:
        words = rule.split()
        udp = "-p" in words and words[words.index("-p") + 1] == "udp"
        if words[0] in chains and "DNAT" in words and udp and "--dport" in words:
            out.add(int(words[words.index("--dport") + 1]))
    return out


def iptables_owners(save_text: str) -> dict[str, tuple[str, str]]:
    """chain -> (network, container ID) of every CNI-DN- chain an entry rule names, from its comment."""
    import shlex

    _, rules = save_rules(save_text)
    out: dict[str, tuple[str, str]] = {}
    for rule in rules:
        if not rule.startswith(DNAT_CHAIN + " ") or "--comment" not in rule:
            continue
        try:
            words = shlex.split(rule)
            text = words[words.index("--comment") + 1]
        except (ValueError, IndexError):
            continue
        owner = parse_comment(text)
        target = words[-1] if len(words) > 1 and words[-2] in ("-j", "-g") else ""
        if owner and target.startswith("CNI-DN-") and dnat_chain(*owner) == target:
            out[target] = owner
    return out


# ---- nftables ----------------------------------------------------------------------------------
def nft_quote(text: str) -> str:
    return '"' + text.replace('"', "") + '"'


def nft_add_script(conf: PortMapConf, container_id: str, family: int, address: object,
                   stale: list[tuple[str, int]]) -> str:
    """The nft batch installing one family's rules (after deleting `stale` (chain, handle)s: this
    container's rules of an earlier ADD), as the reference's knftables transaction builds them."""
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
    lines.append(f"add rule {t} {owner} counter comment {cid}")
    return "\n".join(lines) + "\n"


def nft_items(listing_items: list[dict]) -> list[dict]:
    return [item["rule"] for item in listing_items if "rule" in item]


def nft_rules_of(rules: list[dict], container_id: str, chains: Iterable[str]) -> list[tuple[str, int]]:
    """(chain, handle) of the rules in `chains` commented with the container ID."""
    wanted = set(chains)
    return [(r["chain"], r["handle"]) for r in rules
            if r.get("chain") in wanted and r.get("comment") == container_id]


def nft_forward(rule: dict) -> tuple[str, int, str, str, int] | None:
    """(protocol, host port, host IP or "", target IP, target port) of a DNAT rule's JSON, else None."""
    # As nft's JSON holds them: unchecked, like the rule they come from.
    proto: Any
    port: Any
    dst: Any
    addr: Any
    to_port: Any
    proto = port = dst = addr = to_port = None
    for expr in rule.get("expr", []):
        match = expr.get("match")
        if match and isinstance(match.get("left"), dict) and "payload" in match["left"]:
            payload = match["left"]["payload"]
            if payload.get("field") == "dport":
                proto, port = payload.get("protocol"), match.get("right")
            elif payload.get("field") == "daddr":
                dst = match.get("right")
        if "dnat" in expr:
            addr, to_port = expr["dnat"].get("addr"), expr["dnat"].get("port")
    if proto is None or addr is None:
        return None
    return proto, port, dst or "", addr, to_port


def nft_expected(conf: PortMapConf, family: int, address: object) -> set[tuple[str, int, str, str, int]]:
    ip = str(address.ip)  # type: ignore[attr-defined]
    return {(m.protocol, m.host_port, m.host_ip, ip, m.container_port)
            for m in conf.mappings if m.applies_to(family)}


def nft_masquerades(conf: PortMapConf, family: int) -> int:
    if not conf.snat:
        return 0
    return 2 if family == 4 and not conf.masq_all else 1
