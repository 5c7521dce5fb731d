"""What the plugins left on this node, read from disk and kernel (nothing here changes anything).

- host-local reservations of every list's IPAM section (the files the reference plugin writes too);
- libcni's result cache (`/var/lib/cni/results`), one file per attachment a runtime ADDed;
- iptables nat chains: the per-container ipMasq chains `CNI-<hash>` and portmap's `CNI-DN-<hash>`,
  each owned by the (network, container ID) its rules' comments name;
- nftables ipMasq rules (table `inet cni_plugins_masquerade`), commented with network, ifname, ID;
- IFB devices: bandwidth's `bwp<hash>` devices, tagged by pycni with network and container.
A tool that is not installed contributes nothing; one that fails is reported in `errors`.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
from typing import Any, NamedTuple

from cni.childenv import child_env
from cni.names import hashed_name

from .netconf import NetList, plugin_config

CACHE_DIR = "/var/lib/cni/results"
TOOL_TIMEOUT = 30.0
_READ_LIMIT = 1 << 20


class RangeUse(NamedTuple):
    ranges: str
    capacity: int
    used: int
    free: int


class Reservation(NamedTuple):
    address: str
    container_id: str
    ifname: str  # "" for a file of the older format (container ID only)
    mtime: float


class HostLocal(NamedTuple):
    """One list's host-local store: where, how full, and who holds what."""

    network: str
    plugin: str
    data_dir: str
    range_sets: list[RangeUse]
    reservations: list[Reservation]
    error: str


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


class Ifb(NamedTuple):
    name: str
    network: str | None  # from pycni's tag; None for an untagged (the reference plugin's) IFB
    container_id: str | None


class CacheEntry(NamedTuple):
    """libcni's record of an ADD: what a DEL of the attachment needs (args, capabilities, result)."""

    network: str
    container_id: str
    ifname: str
    netns: str
    mtime: float
    path: str
    cni_args: list[Any]
    capability_args: dict[str, Any]
    result: dict[str, Any] | None
    netns_alive: bool  # the recorded network namespace still exists


class NodeState(NamedTuple):
    host_local: list[HostLocal]
    cache: list[CacheEntry]
    chains: list[Chain]
    nft_rules: list[NftRule]
    ifbs: list[Ifb]
    errors: list[str]


# ---- host-local ------------------------------------------------------------------------------
def _read_file(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read(_READ_LIMIT)


def host_local(lst: NetList) -> list[HostLocal]:
    """The host-local stores the list's plugins name in their `ipam` sections."""
    from cni.contract.errors import CNIError
    from ipam import allocator, config, ranges
    from ipam.store import Store

    out = []
    for plugin in lst.plugins:
        ipam = plugin.get("ipam")
        if not isinstance(ipam, dict) or ipam.get("type") != "host-local":
            continue
        conf = plugin_config(lst, plugin, lst.version)
        data_dir = str(ipam.get("dataDir") or "")
        try:
            cfg = config.parse(conf, {}, lst.version, read_file=_read_file)
            data_dir = cfg.data_dir
            reservations: list[Reservation] = []
            held = []
            if Store.exists(cfg.data_dir, cfg.name):
                with Store(cfg.data_dir, cfg.name, create=False) as store:
                    for name, data in store.reservations():
                        cid, _, ifname = data.strip().decode("utf-8", "replace").partition("\r\n")
                        try:
                            mtime = os.stat(os.path.join(store.path, name), follow_symlinks=False).st_mtime
                        except OSError:
                            continue  # released while we looked
                        reservations.append(Reservation(name, cid.strip(), ifname.strip(), mtime))
                        ip = ranges.parse_ip(name)
                        if ip is not None:
                            held.append(ip)
            uses = []
            for rs in cfg.ranges:
                capacity = allocator.capacity(rs)
                free = allocator.free_count(rs, held)
                uses.append(RangeUse(ranges.range_set_str(rs), capacity, capacity - free, free))
            out.append(HostLocal(lst.name, plugin["type"], data_dir, uses, reservations, ""))
        except CNIError as e:
            out.append(HostLocal(lst.name, plugin["type"], data_dir, [], [], e.msg))
        except OSError as e:
            out.append(HostLocal(lst.name, plugin["type"], data_dir, [], [], str(e)))
    return out


# ---- libcni's result cache ---------------------------------------------------------------------
def cache_entries(cache_dir: str = CACHE_DIR) -> list[CacheEntry]:
    """Every attachment a libcni runtime cached the ADD result of (unreadable files are skipped)."""
    try:
        names = sorted(e.name for e in os.scandir(cache_dir) if e.is_file(follow_symlinks=False))
    except OSError:
        return []
    out = []
    for name in names:
        path = os.path.join(cache_dir, name)
        try:
            raw = json.loads(_read_file(path))
            mtime = os.stat(path).st_mtime
        except (OSError, ValueError):
            continue
        if not isinstance(raw, dict):
            continue
        net, cid, ifname = raw.get("networkName"), raw.get("containerId"), raw.get("ifName")
        if isinstance(net, str) and isinstance(cid, str) and isinstance(ifname, str):
            args, caps, result = raw.get("cniArgs"), raw.get("capabilityArgs"), raw.get("result")
            netns = str(raw.get("netns") or "") or _sandbox_of(result, ifname)
            out.append(CacheEntry(net, cid, ifname, netns, mtime, path,
                                  args if isinstance(args, list) else [],
                                  caps if isinstance(caps, dict) else {},
                                  result if isinstance(result, dict) else None, netns_alive(netns)))
    return out


def _sandbox_of(result: Any, ifname: str) -> str:
    """The netns path in a result's interface `ifname` (libcni before 1.2 caches no `netns`)."""
    interfaces = result.get("interfaces") if isinstance(result, dict) else None
    for i in interfaces if isinstance(interfaces, list) else []:
        if isinstance(i, dict) and i.get("name") == ifname and isinstance(i.get("sandbox"), str):
            return i["sandbox"]
    return ""


def netns_alive(path: str) -> bool:
    """True when path is a network namespace (a file of nsfs, where every namespace lives); the
    empty file a failed unmount may leave is not one."""
    if not path:
        return False
    try:
        return os.stat(path).st_dev == os.stat("/proc/self/ns/net").st_dev
    except OSError:
        return False


# ---- iptables and nftables -----------------------------------------------------------------------
def _tool(argv: list[str]) -> tuple[str | None, str]:
    """(stdout, "") or (None, why); (None, "") when the tool is not installed."""
    path = shutil.which(argv[0], path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
    if path is None:
        return None, ""
    try:
        proc = subprocess.run([path, *argv[1:]], capture_output=True, text=True, timeout=TOOL_TIMEOUT,
                              env=child_env(), check=False)
    except subprocess.TimeoutExpired:
        return None, f"{argv[0]} gave no answer within {TOOL_TIMEOUT:g}s"
    if proc.returncode != 0:
        return None, f"{' '.join(argv)}: exited {proc.returncode}: {proc.stderr.strip()[:300]}"
    return proc.stdout, ""


def _owner(comment: str, prefix: str) -> tuple[str, str] | None:
    """(network, container ID) from `<prefix>name: "<net>" id: "<cid>"` (Go's %q quoting)."""
    if not comment.startswith(prefix + "name: "):
        return None
    decoder = json.JSONDecoder()
    try:
        net, end = decoder.raw_decode(comment, len(prefix) + len("name: "))
        if not comment.startswith(" id: ", end):
            return None
        cid, end = decoder.raw_decode(comment, end + len(" id: "))
    except ValueError:
        return None
    if end != len(comment) or not isinstance(net, str) or not isinstance(cid, str):
        return None
    return net, cid


def _jump(words: list[str]) -> str:
    for i, word in enumerate(words[:-1]):
        if word in ("-j", "-g", "--jump", "--goto"):
            return words[i + 1]
    return ""


def nat_chains(save: str, family: int) -> list[Chain]:
    """The per-container chains of an `iptables-save -t nat` dump: ipMasq's `CNI-<hash>` (its rules
    and the POSTROUTING jump commented `name: ... id: ...`) and portmap's `CNI-DN-<hash>` (the jump
    to it from CNI-HOSTPORT-DNAT commented `dnat name: ... id: ...`)."""
    found: dict[str, Chain] = {}
    table = None
    for line in save.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
            continue
        if table != "nat" or not line.startswith("-A ") or "CNI-" not in line or "--comment" not in line:
            continue
        try:
            words = shlex.split(line)
            comment = words[words.index("--comment") + 1]
        except (ValueError, IndexError):
            continue
        if comment.startswith("dnat "):
            kind, prefix, owner = "portmap", "CNI-DN-", _owner(comment, "dnat ")
        else:
            kind, prefix, owner = "ipMasq", "CNI-", _owner(comment, "")
        if owner is None:
            continue
        # The chain is named by a hash of its owner; a comment naming someone else is not ours.
        chain = hashed_name(prefix, owner[0] + owner[1], 28)
        if chain in (words[1], _jump(words)) and chain not in found:
            found[chain] = Chain(family, chain, kind, owner[0], owner[1])
    return list(found.values())


def nft_masq_rules(listing: str) -> list[NftRule]:
    """The per-attachment rules of `nft -j list chain inet cni_plugins_masquerade masq_checks`;
    each comment reads `<hash>, net: <net>, if: <ifname>, id: <cid>`."""
    try:
        items = json.loads(listing).get("nftables", [])
    except (ValueError, AttributeError):
        return []
    out = []
    for item in items:
        rule = (item.get("rule") if isinstance(item, dict) else None) or {}
        comment = str(rule.get("comment", ""))
        _, sep, rest = comment.partition(", net: ")
        net, sep2, rest = rest.partition(", if: ")
        ifname, sep3, cid = rest.partition(", id: ")
        if sep and sep2 and sep3:
            out.append(NftRule(net, ifname, cid, int(rule.get("handle", 0))))
    return out


def ifbs(links: list[dict[str, Any]]) -> list[Ifb]:
    """IFB devices from `ip -d -j link show type ifb`, with the owner pycni's tag names."""
    out = []
    for link in links:
        name = str(link.get("ifname", ""))
        fields = str(link.get("ifalias", "")).split(" ")
        tag: dict[str, str] = {}
        if fields[0] == "pycni-bandwidth":
            tag = dict(f.split("=", 1) for f in fields[1:] if "=" in f)
        out.append(Ifb(name, tag.get("network"), tag.get("container")))
    return out


def read(lists: list[NetList], cache_dir: str = CACHE_DIR) -> NodeState:
    """Everything above, for the given lists' host-local stores."""
    errors: list[str] = []
    stores = [hl for lst in lists if not lst.error for hl in host_local(lst)]
    chains: list[Chain] = []
    for family, tool in ((4, "iptables-save"), (6, "ip6tables-save")):
        save, why = _tool([tool, "-t", "nat"])
        if save is not None:
            chains += nat_chains(save, family)
        elif why and "table does not exist" not in why and "not supported" not in why:
            errors.append(why)
    rules: list[NftRule] = []
    listing, why = _tool(["nft", "-j", "list", "chain", "inet", "cni_plugins_masquerade", "masq_checks"])
    if listing is not None:
        rules = nft_masq_rules(listing)
    elif why and "No such file or directory" not in why and "does not exist" not in why:
        errors.append(why)
    devices: list[Ifb] = []
    links, why = _tool(["ip", "-d", "-j", "link", "show", "type", "ifb"])
    if links is not None:
        try:
            devices = ifbs(json.loads(links or "[]"))
        except ValueError:
            errors.append("ip -j link printed no JSON")
    elif why:
        errors.append(why)
    else:
        errors.append("ip (iproute2) is not installed: IFB devices are not listed")
    return NodeState(stores, cache_entries(cache_dir), chains, rules, devices, errors)
