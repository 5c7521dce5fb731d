"""Masquerade (ipMasq) and MAC spoof-check rules, laid out exactly as the reference plugins lay them.

Rules made by the reference `bridge` and by ours are interchangeable: DEL and GC of either find
what ADD of either made, because every name and comment derives from (network, container ID[,
ifname]) the same way:

* iptables (`nat` table of iptables and ip6tables): a chain `CNI-<sha512(net+cid)>`[:28] holding
  `-d <subnet> ACCEPT` and `! -d <multicast> MASQUERADE`, entered from POSTROUTING by
  `-s <ip> -j <chain>`; every rule carries the comment `name: "<net>" id: "<cid>"`.
* nftables: table `inet cni_plugins_masquerade`, base chain `postrouting` (nat, srcnat) that
  skips multicast and jumps to `masq_checks`, which holds one rule per address commented
  `<sha512(net)[:16]>-<sha512(ifname:cid)[:16]>, net: ..., if: ..., id: ...`.
* spoof check: table `bridge nat`, base chain `PREROUTING` (filter, priority -300) jumping per
  host port to `cni-br-iface-<cid>-<ifname>`, then to `...-mac`, which returns for the container's
  MAC and drops the rest; all commented `macspoofchk-<cid>-<ifname>`.

Everything goes through the `iptables-save`/`iptables-restore` and `nft` executables: one batch
per change, atomic in the kernel. Rule generation is pure (the `*_script` functions); only
`_run` executes.
"""

from __future__ import annotations

import json
import os
import sys

from cni.childenv import child_env
from cni.names import hashed_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

MAX_CHAIN = 28
NFT_COMMENT_MAX = 128
MASQ_TABLE = "cni_plugins_masquerade"
MASQ_CHAIN = "masq_checks"
MASQ_TABLE_COMMENT = "Masquerading for plugins from github.com/containernetworking/plugins"
MASQ_CHAIN_COMMENT = "Masquerade traffic from certain IPs to any (non-multicast) IP outside their subnet"
SPOOF_TABLE = "nat"
SPOOF_BASE = "PREROUTING"
_MULTICAST = {4: "224.0.0.0/4", 6: "ff00::/8"}
_SAVE = {4: "iptables-save", 6: "ip6tables-save"}
_RESTORE = {4: "iptables-restore", 6: "ip6tables-restore"}


class FirewallError(Exception):
    """A firewall tool failed; the message names the tool, what it was doing and its stderr."""


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


def spoof_id(container_id: str, ifname: str) -> str:
    return f"{container_id}-{ifname}"


# ---- running the tools -----------------------------------------------------------------------
def _which(tool: str) -> str | None:
    dirs = os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").split(":")
    for directory in [*dirs, "/usr/sbin", "/sbin"]:
        path = os.path.join(directory or ".", tool)
        if os.access(path, os.X_OK):
            return path
    return None


def _run(argv: list[str], stdin: str | None = None, what: str = "") -> str:
    import subprocess

    path = _which(argv[0])
    if path is None:
        raise FirewallError(f"{what or argv[0]}: {argv[0]} is not installed")
    proc = subprocess.run([path, *argv[1:]], input=stdin, capture_output=True, text=True, check=False,
                          env=child_env())
    if proc.returncode != 0:
        err = proc.stderr.strip().replace("\n", "; ")
        raise FirewallError(f"{what or argv[0]}: {argv[0]} exited {proc.returncode}: {err}")
    return proc.stdout


def default_backend() -> str:
    """iptables, unless only nft is installed (the reference's choice)."""
    if _which("iptables") is None and _which("nft") is not None:
        return "nftables"
    return "iptables"


# ---- ipMasq, iptables ------------------------------------------------------------------------
def _q(text: str) -> str:
    """Quote for iptables-restore: double quotes with \\ and \" escaped, as iptables-save writes."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def iptables_masq_script(ips: list, network: str, container_id: str) -> str:
    """The iptables-restore batch adding one family's masquerade rules (all `ips` of one family).

    Declaring the chain empties it if it exists, so a repeated ADD leaves one set of rules.
    """
    chain = chain_name(network, container_id)
    c = _q(comment(network, container_id))
    lines = ["*nat", f":{chain} - [0:0]"]
    for ip in ips:
        lines.append(f"-A {chain} -d {ip.network} -m comment --comment {c} -j ACCEPT")
        lines.append(f"-A {chain} ! -d {_MULTICAST[ip.version]} -m comment --comment {c} -j MASQUERADE")
    for ip in ips:
        lines.append(f"-A POSTROUTING -s {ip.ip}/{ip.max_prefixlen} -m comment --comment {c} -j {chain}")
    lines += ["COMMIT", ""]
    return "\n".join(lines)


def iptables_masq_teardown_script(save: str, chains: set[str]) -> str | None:
    """The batch removing `chains` and every POSTROUTING rule that jumps to them.

    `save` is `iptables-save -t nat` output; None when none of it is there.
    """
    present: set[str] = set()
    deletes: list[str] = []
    table = None
    for line in save.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
            continue
        if table != "nat":
            continue
        if line.startswith(":"):
            name = line[1:].split(" ", 1)[0]
            if name in chains:
                present.add(name)
        elif line.startswith("-A POSTROUTING "):
            target = _jump_target(line)
            if target in chains:
                deletes.append("-D " + line[3:])
    if not present and not deletes:
        return None
    lines = ["*nat", *deletes]
    for name in sorted(present):
        lines += [f"-F {name}", f"-X {name}"]
    lines += ["COMMIT", ""]
    return "\n".join(lines)


def _jump_target(rule: str) -> str | None:
    parts = rule.split()
    for i, part in enumerate(parts[:-1]):
        if part in ("-j", "-g", "--jump", "--goto"):
            return parts[i + 1]
    return None


_COMMENT_PREFIX = "--comment "


def iptables_masq_owners(save: str) -> dict[str, tuple[str, str]]:
    """chain -> (network, container ID) for every masquerade chain named in a nat table dump.

    The owners come from the rule comments, so GC can map a chain back to its attachment.
    """
    import shlex

    out: dict[str, tuple[str, str]] = {}
    table = None
    for line in save.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
            continue
        if table != "nat" or not line.startswith("-A ") or "CNI-" not in line or _COMMENT_PREFIX not in line:
            continue
        try:
            words = shlex.split(line)
        except ValueError:
            continue
        chain = words[1]
        target = _jump_target(line)
        name = chain if chain.startswith("CNI-") else target
        if not name or not name.startswith("CNI-"):
            continue
        try:
            text = words[words.index("--comment") + 1]
        except (ValueError, IndexError):
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


def _iptables_available(family: int) -> bool:
    return _which(_SAVE[family]) is not None and _which(_RESTORE[family]) is not None


def setup_masq_iptables(ips: list, network: str, container_id: str) -> None:
    for family in (4, 6):
        mine = [ip for ip in ips if ip.version == family]
        if mine:
            script = iptables_masq_script(mine, network, container_id)
            _run([_RESTORE[family], "-w", "--noflush"], script, f"ipMasq for {network}/{container_id}")


def _save(family: int) -> str:
    return _run([_SAVE[family], "-t", "nat"], None, f"read IPv{family} nat table")


# What iptables says when a family's nat table cannot exist on this host at all.
_NO_NAT_TABLE = ("address family not supported", "table does not exist", "can't initialize",
                 "cannot initialize", "unable to initialize table", "protocol not supported")


def _read_nat(family: int) -> str | None:
    """One family's `iptables-save -t nat`, or None when that table cannot exist here.

    A nat table that cannot be initialised (IPv6 disabled, the nat module missing on the legacy
    backend) holds none of our rules, since no ADD could have put any there; the family is skipped
    with a note on stderr instead of failing DEL and GC of every attachment forever. Any other
    failure (a lock or ruleset-generation race, a killed tool) is tried once more and then
    reported, so DEL fails and is retried rather than leaving rules behind for good.
    """
    for attempt in (1, 2):
        try:
            return _save(family)
        except FirewallError as e:
            if any(phrase in str(e).lower() for phrase in _NO_NAT_TABLE):
                sys.stderr.write(f"bridge: IPv{family} masquerade rules skipped, no nat table here: {e}\n")
                return None
            if attempt == 2:
                raise
    return None


def _remove_chains(family: int, save: str, chains: set[str], what: str) -> None:
    """Remove `chains` and the POSTROUTING jumps to them from one family (`save`: its nat dump).

    A batch fails as a whole when a concurrent DEL or GC removed part of it first, so a failure
    reads the table again and retries once; it is an error only while the chains are still there.
    """
    script = iptables_masq_teardown_script(save, chains)
    for retry in (True, False):
        if script is None:
            return
        try:
            _run([_RESTORE[family], "-w", "--noflush"], script, what)
            return
        except FirewallError as e:
            error = e
        try:
            script = iptables_masq_teardown_script(_save(family), chains)
        except FirewallError:
            raise error from None
        if script is not None and not retry:
            raise error


def _remove_in_both_families(select: Callable[[str], set[str]], what: str) -> None:
    """For IPv4 and IPv6: the chains `select` picks from the nat dump, removed with their jumps.
    Every family is tried; the failures are reported together."""
    errors = []
    for family in (4, 6):
        save = _read_nat(family) if _iptables_available(family) else None
        chains = select(save) if save is not None else set()
        if not chains:
            continue
        try:
            _remove_chains(family, save, chains, what)
        except FirewallError as e:
            errors.append(str(e))
    if errors:
        raise FirewallError("; ".join(errors))


def teardown_masq_iptables(network: str, container_id: str) -> None:
    """Remove the container's chain and jumps in both families, whatever addresses they name."""
    chain = chain_name(network, container_id)
    _remove_in_both_families(lambda save: {chain}, f"remove ipMasq of {network}/{container_id}")


def gc_masq_iptables(network: str, valid_ids: set[str]) -> None:
    """Remove the chains (and jumps) of `network` whose container ID is not in `valid_ids`."""
    def stale(save: str) -> set[str]:
        return {chain for chain, (net, cid) in iptables_masq_owners(save).items()
                if net == network and cid not in valid_ids}

    _remove_in_both_families(stale, f"garbage-collect ipMasq of {network}")


# ---- ipMasq, nftables ------------------------------------------------------------------------
def _nft_str(text: str) -> str:
    return '"' + text.replace('"', "") + '"'


def nft_masq_script(ips: list, network: str, ifname: str, container_id: str, stale: list[int]) -> str:
    """The nft batch adding the masquerade rules (and dropping `stale` rule handles first)."""
    t = f"inet {MASQ_TABLE}"
    c = _nft_str(nft_comment(network, ifname, container_id))
    lines = [
        f"add table {t} {{ comment {_nft_str(MASQ_TABLE_COMMENT)} ; }}",
        f"add chain {t} {MASQ_CHAIN} {{ comment {_nft_str(MASQ_CHAIN_COMMENT)} ; }}",
        f"add chain {t} postrouting {{ type nat hook postrouting priority srcnat ; }}",
        f"flush chain {t} postrouting",
        f"add rule {t} postrouting ip daddr == 224.0.0.0/4 return",
        f"add rule {t} postrouting ip6 daddr == ff00::/8 return",
        f"add rule {t} postrouting goto {MASQ_CHAIN}",
    ]
    lines += [f"delete rule {t} {MASQ_CHAIN} handle {h}" for h in stale]
    for ip in ips:
        fam = "ip" if ip.version == 4 else "ip6"
        lines.append(f"add rule {t} {MASQ_CHAIN} {fam} saddr == {ip.ip} {fam} daddr != {ip.network} "
                     f"masquerade comment {c}")
    return "\n".join(lines) + "\n"


def _nft_rules(family: str, table: str, chain: str) -> list[dict] | None:
    """The rules of one chain as nft's JSON objects, or None when the table or chain is missing."""
    import subprocess

    path = _which("nft")
    if path is None:
        return None
    proc = subprocess.run([path, "-j", "list", "chain", family, table, chain],
                          capture_output=True, text=True, check=False, env=child_env())
    if proc.returncode != 0:
        if "No such file or directory" in proc.stderr or "does not exist" in proc.stderr:
            return None
        raise FirewallError(f"list chain {family} {table} {chain}: nft exited {proc.returncode}: "
                            f"{proc.stderr.strip()}")
    return _rules_of(proc.stdout)


def _rules_of(listing: str) -> list[dict]:
    try:
        items = json.loads(listing).get("nftables", [])
    except ValueError as e:
        raise FirewallError(f"nft printed no JSON: {e}") from None
    return [item["rule"] for item in items if "rule" in item]


def _handles_with_prefix(rules: list[dict] | None, prefix: str) -> list[tuple[int, str]]:
    return [(r["handle"], r.get("comment", "")) for r in rules or []
            if str(r.get("comment", "")).startswith(prefix)]


def setup_masq_nftables(ips: list, network: str, ifname: str, container_id: str) -> None:
    stale = _handles_with_prefix(_nft_rules("inet", MASQ_TABLE, MASQ_CHAIN),
                                 nft_instance_hash(network, ifname, container_id))
    script = nft_masq_script(ips, network, ifname, container_id, [h for h, _ in stale])
    _run(["nft", "-f", "-"], script, f"ipMasq for {network}/{container_id}")


def teardown_masq_nftables(network: str, ifname: str, container_id: str) -> None:
    if _which("nft") is None:
        return
    found = _handles_with_prefix(_nft_rules("inet", MASQ_TABLE, MASQ_CHAIN),
                                 nft_instance_hash(network, ifname, container_id))
    _delete_rules("inet", MASQ_TABLE, MASQ_CHAIN, [h for h, _ in found], f"{network}/{container_id}")


def gc_masq_nftables(network: str, valid: set[tuple[str, str]]) -> None:
    """Remove the rules of `network` whose (container ID, ifname) is not in `valid`."""
    if _which("nft") is None:
        return
    keep = {nft_comment(network, ifname, cid) for cid, ifname in valid}
    found = _handles_with_prefix(_nft_rules("inet", MASQ_TABLE, MASQ_CHAIN), nft_network_hash(network))
    _delete_rules("inet", MASQ_TABLE, MASQ_CHAIN, [h for h, c in found if c not in keep], network)


def _delete_rules(family: str, table: str, chain: str, handles: list[int], who: str) -> None:
    if handles:
        script = "".join(f"delete rule {family} {table} {chain} handle {h}\n" for h in handles)
        _run(["nft", "-f", "-"], script, f"remove rules of {who}")


# ---- ipMasq, both ----------------------------------------------------------------------------
def setup_masq(backend: str | None, ips: list, network: str, ifname: str, container_id: str) -> None:
    """Masquerade traffic from `ips` (IPv4Interface/IPv6Interface) leaving their subnets."""
    if (backend or default_backend()) == "nftables":
        setup_masq_nftables(ips, network, ifname, container_id)
    else:
        setup_masq_iptables(ips, network, container_id)


def _every(*steps: Callable[[], None]) -> None:
    """Run every step; the failures are reported together at the end."""
    errors = []
    for step in steps:
        try:
            step()
        except FirewallError as e:
            errors.append(str(e))
    if errors:
        raise FirewallError("; ".join(errors))


def teardown_masq(network: str, ifname: str, container_id: str) -> None:
    """Remove the attachment's masquerade rules from both backends (either may have made them)."""
    _every(lambda: teardown_masq_iptables(network, container_id),
           lambda: teardown_masq_nftables(network, ifname, container_id))


def gc_masq(network: str, valid: set[tuple[str, str]]) -> None:
    """Remove masquerade rules of `network` that belong to no attachment in `valid`."""
    valid_ids = {cid for cid, _ in valid}
    _every(lambda: gc_masq_iptables(network, valid_ids), lambda: gc_masq_nftables(network, valid))


# ---- MAC spoof check -------------------------------------------------------------------------
def spoof_chains(container_id: str, ifname: str) -> tuple[str, str]:
    iface = "cni-br-iface-" + spoof_id(container_id, ifname)
    return iface, iface + "-mac"


def spoofcheck_script(host_ifname: str, mac: str, container_id: str, ifname: str) -> str:
    """The nft batch that lets frames from `host_ifname` through only with source MAC `mac`."""
    t = f"bridge {SPOOF_TABLE}"
    iface, mac_chain = spoof_chains(container_id, ifname)
    c = _nft_str("macspoofchk-" + spoof_id(container_id, ifname))
    return "\n".join([
        f"add table {t}",
        f"add chain {t} {SPOOF_BASE} {{ type filter hook prerouting priority -300 ; policy accept ; }}",
        f"add chain {t} {iface}",
        f"add chain {t} {mac_chain}",
        f"flush chain {t} {iface}",
        f"flush chain {t} {mac_chain}",
        f"add rule {t} {SPOOF_BASE} iifname {_nft_str(host_ifname)} jump {iface} comment {c}",
        f"add rule {t} {iface} jump {mac_chain} comment {c}",
        f"add rule {t} {mac_chain} ether saddr {mac} return comment {c}",
        f"add rule {t} {mac_chain} drop comment {c}",
    ]) + "\n"


def setup_spoofcheck(host_ifname: str, mac: str, container_id: str, ifname: str) -> None:
    _run(["nft", "-f", "-"], spoofcheck_script(host_ifname, mac, container_id, ifname),
         f"setup spoof-check for {host_ifname}")


def spoofcheck_teardown_script(listing: str, container_id: str, ifname: str) -> str | None:
    """From `nft -j list table bridge nat`: the batch removing this attachment's rules and chains."""
    try:
        items = json.loads(listing).get("nftables", [])
    except ValueError as e:
        raise FirewallError(f"nft printed no JSON: {e}") from None
    iface, mac_chain = spoof_chains(container_id, ifname)
    tag = "macspoofchk-" + spoof_id(container_id, ifname)
    t = f"bridge {SPOOF_TABLE}"
    chains = {item["chain"]["name"] for item in items if "chain" in item}
    lines = [f"delete rule {t} {SPOOF_BASE} handle {item['rule']['handle']}" for item in items
             if "rule" in item and item["rule"].get("chain") == SPOOF_BASE
             and item["rule"].get("comment") == tag]
    for name in (iface, mac_chain):
        if name in chains:
            lines.append(f"flush chain {t} {name}")
    for name in (iface, mac_chain):
        if name in chains:
            lines.append(f"delete chain {t} {name}")
    return "\n".join(lines) + "\n" if lines else None


def teardown_spoofcheck(container_id: str, ifname: str) -> None:
    import subprocess

    path = _which("nft")
    if path is None:
        return
    proc = subprocess.run([path, "-j", "list", "table", "bridge", SPOOF_TABLE],
                          capture_output=True, text=True, check=False, env=child_env())
    if proc.returncode != 0:
        if "No such file or directory" in proc.stderr:
            return
        raise FirewallError(f"list table bridge {SPOOF_TABLE}: nft exited {proc.returncode}: "
                            f"{proc.stderr.strip()}")
    script = spoofcheck_teardown_script(proc.stdout, container_id, ifname)
    if script:
        _run(["nft", "-f", "-"], script, f"remove spoof-check of {spoof_id(container_id, ifname)}")
