"""bridge's (and ptp's) ipMasq on the host: the names and comments that record which attachment owns
a masquerade rule, laid out exactly as the reference plugins lay them out.

* iptables, nat table: a chain `CNI-<sha512(network + container ID)>`[:28] entered from POSTROUTING;
  every rule in it and every jump to it carries `name: "<network>" id: "<container ID>"` (Go's %q).
* nftables: table `inet cni_plugins_masquerade`, chain `masq_checks`, one rule per address
  commented `<sha512(net)[:16]>-<sha512(ifname:cid)[:16]>, net: <net>, if: <ifname>, id: <cid>`
  (at most 128 characters).

The chain name hashes network and container ID run together, so (`X1`, `abc`) and (`X`, `1abc`)
share one: the name says where to look, the comments say whose it is (`chain_owners`).
"""

from __future__ import annotations

from cni.names import hashed_name

from . import iptables_save

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .iptables_save import Rule

Owner = tuple[str, str]  # (network, container ID)

CHAIN_PREFIX = "CNI-"
MAX_CHAIN = 28
ENTRY_CHAIN = "POSTROUTING"
MULTICAST = {4: "224.0.0.0/4", 6: "ff00::/8"}

NFT_TABLE = "cni_plugins_masquerade"
NFT_FAMILY = "inet"
NFT_CHAIN = "masq_checks"
NFT_BASE_CHAIN = "postrouting"
NFT_COMMENT_MAX = 128
NFT_TABLE_COMMENT = "Masquerading for plugins from github.com/containernetworking/plugins"
NFT_CHAIN_COMMENT = "Masquerade traffic from certain IPs to any (non-multicast) IP outside their subnet"

_HEX = frozenset("0123456789abcdef")
_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v",
               '"': '\\"', "\\": "\\\\"}
_GO_UNESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
                 '"': '"', "\\": "\\", "'": "'"}
_GO_HEX_DIGITS = {"x": 2, "u": 4, "U": 8}


# ---- iptables ----------------------------------------------------------------------------------
def chain_name(network: str, container_id: str) -> str:
    """`CNI-` + hash: the attachment's chain (28 characters), as the reference names it."""
    return hashed_name(CHAIN_PREFIX, network + container_id, MAX_CHAIN)


def is_chain_name(name: str) -> bool:
    """True for a name `chain_name` can make (portmap's `CNI-DN-...` and shared chains are not)."""
    return len(name) == MAX_CHAIN and name.startswith(CHAIN_PREFIX) and set(name[len(CHAIN_PREFIX):]) <= _HEX


def comment(network: str, container_id: str) -> str:
    """The rule comment, as Go's `name: %q id: %q` prints it."""
    return f"name: {go_quote(network)} id: {go_quote(container_id)}"


def parse_comment(text: str) -> Owner | None:
    """(network, container ID) from a `comment`, or None when the text is not one."""
    if not text.startswith("name: "):
        return None
    network, end = _go_unquote(text, len("name: "))
    if network is None or not text.startswith(" id: ", end):
        return None
    container_id, end = _go_unquote(text, end + len(" id: "))
    if container_id is None or end != len(text):
        return None
    return network, container_id


def go_quote(text: str) -> str:
    """Go's strconv.Quote: printable characters as they are, the rest escaped."""
    out = ['"']
    for ch in text:
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def _go_unquote(text: str, start: int) -> tuple[str | None, int]:
    """(the string a Go-quoted literal at `start` stands for, the index after it); (None, start) if
    there is none. Octal escapes are not read: Go's %q never writes them."""
    if not text.startswith('"', start):
        return None, start
    out: list[str] = []
    i = start + 1
    while i < len(text):
        ch = text[i]
        if ch == '"':
            return "".join(out), i + 1
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        code = text[i + 1:i + 2]
        if code in _GO_UNESCAPES:
            out.append(_GO_UNESCAPES[code])
            i += 2
        elif code in _GO_HEX_DIGITS:
            digits = text[i + 2:i + 2 + _GO_HEX_DIGITS[code]]
            if len(digits) != _GO_HEX_DIGITS[code] or not set(digits.lower()) <= _HEX:
                return None, start
            out.append(chr(min(int(digits, 16), 0x10FFFF)))
            i += 2 + len(digits)
        else:
            return None, start
    return None, start


def chain_owners(save: str) -> dict[str, list[Owner | None]]:
    """chain -> the owner every rule in it and every POSTROUTING jump to it records, for each
    ipMasq-named chain of an `iptables-save -t nat` dump (None: a rule without our comment).

    A chain is one attachment's only when every entry names that attachment: what DEL and GC
    remove, and what ADD may empty (see `foreign`).
    """
    out: dict[str, list[Owner | None]] = {c: [] for c in iptables_save.chains(save) if is_chain_name(c)}
    for rule in iptables_save.rules(save):
        if rule.chain in out:
            out[rule.chain].append(_owner_of(rule))
        elif rule.chain == ENTRY_CHAIN and CHAIN_PREFIX in rule.spec:
            target = rule.target()
            if target is not None and is_chain_name(target):
                out.setdefault(target, []).append(_owner_of(rule))
    return out


def _owner_of(rule: Rule) -> Owner | None:
    text = rule.comment()
    return parse_comment(text) if text is not None else None


def foreign(owners: list[Owner | None], mine: Owner) -> list[Owner | None]:
    """The entries of `chain_owners` that record someone other than `mine`."""
    return [o for o in owners if o != mine]


def owned_rule(rule: Rule, owner: Owner) -> bool:
    """True for a rule of `owner`'s chain, or a POSTROUTING jump to it, that records `owner`:
    what its DEL removes when the chain itself holds another's rules too."""
    chain = chain_name(*owner)
    inside = rule.chain == chain
    jump = rule.chain == ENTRY_CHAIN and chain in rule.spec and rule.target() == chain
    return (inside or jump) and _owner_of(rule) == owner


def owners(save: str) -> dict[str, list[Owner]]:
    """chain -> the distinct owners recorded in or towards each ipMasq chain whose name they hash
    to (two only when colliding attachments both wrote there, as the reference's ADD does)."""
    out: dict[str, list[Owner]] = {}
    for chain, recorded in chain_owners(save).items():
        named = [o for o in dict.fromkeys(recorded) if o is not None and chain_name(*o) == chain]
        if named:
            out[chain] = named
    return out


# ---- nftables ----------------------------------------------------------------------------------
def nft_network_hash(network: str) -> str:
    return hashed_name("", network, 16)


def nft_instance_hash(network: str, ifname: str, container_id: str) -> str:
    return nft_network_hash(network) + "-" + hashed_name("", f"{ifname}:{container_id}", 16)


def nft_comment(network: str, ifname: str, container_id: str) -> str:
    """The rule comment of one attachment (the reference's: quotes dropped, cut at 128)."""
    text = "{}, net: {}, if: {}, id: {}".format(
        nft_instance_hash(network, ifname, container_id),
        network.replace('"', ""), ifname.replace('"', ""), container_id.replace('"', ""))
    return text[:NFT_COMMENT_MAX]


def parse_nft_comment(text: str) -> tuple[str, str, str] | None:
    """(network, ifname, container ID) an `nft_comment` records (the ID maybe cut), or None."""
    _, sep, rest = text.partition(", net: ")
    network, sep2, rest = rest.partition(", if: ")
    ifname, sep3, container_id = rest.partition(", id: ")
    return (network, ifname, container_id) if sep and sep2 and sep3 else None
