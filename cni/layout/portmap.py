"""What portmap leaves on a host, written and read back through here.

iptables (`nat` table of iptables and ip6tables), as the reference v1.9.1 names them:

    CNI-HOSTPORT-DNAT     entry rules commented `dnat name: "<net>" id: "<cid>"` that jump to
    CNI-DN-<hash>         the attachment's chain, named by sha512(network + container ID)
    CNI-HOSTPORT-SETMARK, CNI-HOSTPORT-MASQ   shared; CNI-HOSTPORT-SNAT, CNI-SN-<hash>: older versions'

The chain's name is a hash of network and container ID run together, so (`X1`, `abc`) and
(`X`, `1abc`) get one name: the entry rules' comment is what says whose a chain is.

nftables (tables `ip cni_hostport` and `ip6 cni_hostport`): DNAT rules in `hostports` and
masquerades in `masquerading`, each commented with the bare container ID as v1.9.1 comments them
(so its DEL removes ours and ours removes its). That comment cannot tell apart one container on two
networks, so pycni adds a chain per network, `pycni_owners_<sha512(net)[:16]>`, never jumped to,
holding one marker rule per attachment: `<ip|ip6> daddr <container address>` commented
`<cid> <ifname>`. A rule belongs to an attachment when its comment is the container ID and its
address (the DNAT target, the masquerade's destination) is the one the attachment's marker names.

route_localnet: a record per host interface on which portmap turned it on (or found it on), in
LOCALNET_DIR, naming who set it and the attachments that need it; the last of them to go turns
it off again when portmap was the one that turned it on.
"""

from __future__ import annotations

from cni.names import hashed_name

from . import iptables_save

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    from .iptables_save import Rule

# ---- iptables ----------------------------------------------------------------------------------
DNAT_CHAIN = "CNI-HOSTPORT-DNAT"
DNAT_PREFIX = "CNI-DN-"
OLD_SNAT_PREFIX = "CNI-SN-"
SETMARK_CHAIN = "CNI-HOSTPORT-SETMARK"
MASQ_CHAIN = "CNI-HOSTPORT-MASQ"
OLD_SNAT_CHAIN = "CNI-HOSTPORT-SNAT"
SHARED_CHAINS = (DNAT_CHAIN, SETMARK_CHAIN, MASQ_CHAIN, OLD_SNAT_CHAIN)  # every attachment's, kept by DEL
MAX_CHAIN = 28
MAX_COMMENT = 255
SETMARK_COMMENT = "CNI portfwd masquerade mark"
MASQ_COMMENT = "CNI portfwd requiring masquerade"

# ---- nftables ----------------------------------------------------------------------------------
NFT_TABLE = "cni_hostport"
NFT_FAMILY = {4: "ip", 6: "ip6"}
NFT_TABLE_COMMENT = "CNI portmap plugin"
NFT_RULE_CHAINS = ("hostports", "hostip_hostports", "masquerading")
NFT_OWNER_PREFIX = "pycni_owners_"

# ---- route_localnet ----------------------------------------------------------------------------
LOCALNET_DIR = "/run/pycni/route_localnet"
SET_BY_PYCNI = "pycni"
SET_BY_OTHER = "other"


# ---- iptables names and comments -------------------------------------------------------------
def dnat_chain(network: str, container_id: str) -> str:
    """`CNI-DN-` + sha512(network + container ID), 28 characters: the per-container chain."""
    return hashed_name(DNAT_PREFIX, network + container_id, MAX_CHAIN)


def old_snat_chain(network: str, container_id: str) -> str:
    """The per-container chain of old reference versions; still removed by DEL."""
    return hashed_name(OLD_SNAT_PREFIX, network + container_id, MAX_CHAIN)


def comment(network: str, container_id: str) -> str:
    """`dnat name: "<net>" id: "<cid>"` (Go's %s, no escaping), cut as the reference cuts it."""
    text = f'dnat name: "{network}" id: "{container_id}"'
    return text if len(text) <= MAX_COMMENT else text[:MAX_COMMENT - 2] + "..."


def parse_comment(text: str) -> tuple[str, str] | None:
    """(network, container ID) of an uncut `dnat name: "<net>" id: "<cid>"`, else None."""
    head, sep, tail = text.partition('" id: "')
    if not sep or not head.startswith('dnat name: "') or not tail.endswith('"'):
        return None
    return head[len('dnat name: "'):], tail[:-1]


# ---- reading the nat table (through the one iptables-save walker) -----------------------------
def _entry_owner(rule: Rule) -> tuple[str | None, tuple[str, str] | None]:
    """(target chain, (network, container ID) its comment names) of a CNI-HOSTPORT-DNAT rule."""
    if rule.chain != DNAT_CHAIN:
        return None, None
    words = rule.words()  # split once: shlex is the cost of reading a large table
    text = iptables_save.comment(words) if "--comment" in rule.spec else None
    return iptables_save.jump_target(words), parse_comment(text) if text is not None else None


def iptables_owners(save_text: str) -> dict[str, tuple[str, str]]:
    """chain -> (network, container ID) of every CNI-DN- chain an entry rule names, from its comment
    (only a comment whose owner hashes to that chain's name counts)."""
    out: dict[str, tuple[str, str]] = {}
    for rule in iptables_save.rules(save_text):
        target, owner = _entry_owner(rule)
        if owner and target and target.startswith(DNAT_PREFIX) and dnat_chain(*owner) == target:
            out[target] = owner
    return out


def foreign_owners(save_text: str, network: str, container_id: str) -> set[tuple[str, str]]:
    """Other attachments whose entry rules jump to the chain named for (network, container ID):
    the hash of the two run together names both (`X1`+`abc` and `X`+`1abc`)."""
    chain = dnat_chain(network, container_id)
    out = set()
    for rule in iptables_save.rules(save_text):
        if chain not in rule.spec:  # most rules: no split needed to know they do not jump there
            continue
        target, owner = _entry_owner(rule)
        if target == chain and owner is not None and owner != (network, container_id):
            out.add(owner)
    return out


def udp_ports_of_chains(save_text: str, chains: set[str]) -> set[int]:
    """The UDP host ports the DNAT rules of `chains` forward (what DEL flushes from conntrack)."""
    out = set()
    for rule in iptables_save.rules(save_text):
        if rule.chain not in chains:
            continue
        words = rule.words()
        if iptables_save.jump_target(words) != "DNAT":
            continue
        port = iptables_save.argument(words, "--dport")
        if iptables_save.argument(words, "-p") == "udp" and port is not None and port.isdigit():
            out.add(int(port))
    return out


# ---- nftables names, comments and reading --------------------------------------------------------
def nft_owner_chain(network: str) -> str:
    """The network's marker chain, `pycni_owners_<sha512(net)[:16]>`."""
    return NFT_OWNER_PREFIX + hashed_name("", network, 16)


def nft_marker_comment(container_id: str, ifname: str) -> str:
    """`<cid> <ifname>`: neither may hold a space (libcni's rules), so the split is unambiguous."""
    return f"{container_id} {ifname}".replace('"', "")


def parse_marker_comment(text: str) -> tuple[str, str | None]:
    """(container ID, ifname) of a marker; an older pycni's marker is the bare ID (ifname None)."""
    cid, sep, ifname = text.partition(" ")
    return cid, (ifname if sep else None)


def nft_items(listing_items: list[dict]) -> list[dict]:
    """The rules of an `nft -j list table` listing."""
    return [item["rule"] for item in listing_items if "rule" in item]


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


def nft_address(rule: dict) -> str | None:
    """The container address a rule is about: its DNAT target, else its destination match (a
    masquerade, a marker)."""
    daddr = None
    for expr in rule.get("expr", []):
        if "dnat" in expr:
            return str(expr["dnat"].get("addr"))
        match = expr.get("match")
        left = match.get("left") if match else None
        if isinstance(left, dict) and (left.get("payload") or {}).get("field") == "daddr":
            daddr = str(match.get("right"))
    return daddr


def _markers(rules: list[dict]) -> list[tuple[str, int, str, str | None, str | None]]:
    """(owner chain, handle, container ID, ifname or None, address or None) of every marker rule."""
    out = []
    for r in rules:
        chain = str(r.get("chain", ""))
        if chain.startswith(NFT_OWNER_PREFIX) and isinstance(r.get("comment"), str):
            cid, ifname = parse_marker_comment(r["comment"])
            out.append((chain, r.get("handle", 0), cid, ifname, nft_address(r)))
    return out


def nft_attachment(rules: list[dict], network: str, container_id: str, ifname: str | None,
                   address: str | None = None) -> list[tuple[str, int]]:
    """(chain, handle) of the rules of the attachment (network, container ID, ifname), markers too.

    Its marker names its address: the rules commented with the container ID to that address are
    its own. Without a marker (made by v1.9.1 or an older pycni) the rules commented with the ID
    that no other attachment's marker claims are taken, limited to `address` when it is known
    (ADD replacing its own): v1.9.1's DEL selects by container ID alone, and for one network
    this keeps both ways working. `ifname` None: every marker of the ID on this network (GC of an
    older pycni's marker).
    """
    owner = nft_owner_chain(network)
    out: list[tuple[str, int]] = []
    ours: set[str] = set()
    theirs: set[str] = set()
    for chain, handle, cid, ifn, addr in _markers(rules):
        if cid != container_id:
            continue
        if chain == owner and (ifn is None or ifname is None or ifn == ifname):
            out.append((chain, handle))
            if addr is not None:
                ours.add(addr)
        elif addr is not None:
            theirs.add(addr)
    for r in rules:
        if r.get("chain") not in NFT_RULE_CHAINS or r.get("comment") != container_id:
            continue
        addr = nft_address(r)
        take = addr in ours if ours else addr not in theirs and address in (None, addr)
        if take:
            out.append((r["chain"], r["handle"]))
    return out


def nft_marked(rules: list[dict], network: str) -> set[tuple[str, str | None]]:
    """(container ID, ifname or None) of the attachments this network's marker chain lists."""
    owner = nft_owner_chain(network)
    return {(cid, ifn) for chain, _, cid, ifn, _ in _markers(rules) if chain == owner}


def nft_of_address(rules: list[dict], container_id: str, address: str) -> list[dict]:
    """The rules commented with the container ID that are about `address` (CHECK reads these)."""
    return [r for r in rules if r.get("chain") in NFT_RULE_CHAINS and r.get("comment") == container_id
            and nft_address(r) == address]


# ---- route_localnet records ---------------------------------------------------------------------
def attachment_key(network: str, container_id: str, ifname: str) -> str:
    """A fixed-length, file-safe name of one attachment (network, container ID, ifname), led by
    its network's hash so that GC of one network knows the keys that are its own."""
    return network_key(network) + hashed_name("-", f"{network}\0{container_id}\0{ifname}", 33)


def network_key(network: str) -> str:
    """The lead of every attachment key of `network`."""
    return hashed_name("", network, 16)


def localnet_record_name(netns_inode: int, ifindex: int, ifname: str) -> str:
    """The record's file name: the namespace and the interface's index make a recreated interface
    of the same name (whose value the kernel reset) a new record."""
    return f"{netns_inode}-{ifindex}-{ifname}"


def parse_localnet_record_name(name: str) -> tuple[int, int, str] | None:
    """(netns inode, ifindex, ifname) of a record's file name, else None."""
    inode, _, rest = name.partition("-")
    index, sep, ifname = rest.partition("-")
    if not sep or not inode.isdigit() or not index.isdigit() or not ifname:
        return None
    return int(inode), int(index), ifname


def localnet_record(set_by: str, keys: Iterable[str]) -> bytes:
    """First line who turned route_localnet on (SET_BY_PYCNI, or SET_BY_OTHER when it was on before
    portmap looked), then one attachment key a line."""
    return "\n".join([set_by, *sorted(set(keys))]).encode() + b"\n"


def parse_localnet_record(data: bytes) -> tuple[str, set[str]]:
    """(set_by, attachment keys); anything unreadable reads as set by someone else (never undone)."""
    lines = data.decode("ascii", "replace").split("\n")
    set_by = lines[0] if lines[0] in (SET_BY_PYCNI, SET_BY_OTHER) else SET_BY_OTHER
    return set_by, {line for line in lines[1:] if line}
