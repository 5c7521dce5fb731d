"""Which attachments a node holds, and which of them the runtime still has: pure functions.

An attachment is (network, container ID, ifname), as the runtime names it: the sandbox ID is the
container ID, the interface is the one it asked for (`eth0`; `lo` for containerd's loopback).
Its resources are gathered from the node's state: reservations, the libcni cache entry, ipMasq
chains and nft rules, portmap chains, the IFB. A resource that names no interface (iptables
chains, IFBs) joins the attachment of the same container in that network.

Verdicts, given the sandboxes the runtime lists (None: it could not be asked):
  live     its container ID is a listed sandbox
  in-use   not listed, but the network namespace libcni's cache records for it still exists: a
           container of another runtime sharing the conf dir (nerdctl, `ctr run --cni`), or a
           sandbox the runtime lost without a reboot; not ours to judge
  young    not listed, but a reservation or cache entry of it is newer than the grace period
           (a sandbox being created now is listed only once its network is up)
  leaked   not listed and old enough: `pycni gc` frees it
  unknown  the runtime was not asked
"""

from __future__ import annotations

from typing import Any

from cni.layout.bandwidth import ifb_name, is_ifb_name

from .node import NodeState

RUNTIME_IFNAMES = ("eth0", "lo")  # the interfaces containerd attaches every sandbox with


class Attachment:
    """One attachment and what it holds on the node."""

    __slots__ = ("addresses", "cached", "container_id", "ifbs", "ifname", "ipmasq", "netns_alive",
                 "network", "newest", "portmap", "verdict")

    def __init__(self, network: str, container_id: str, ifname: str) -> None:
        self.network, self.container_id, self.ifname = network, container_id, ifname
        self.addresses: list[str] = []
        self.ipmasq: list[str] = []   # "CNI-..." (iptables, "v6:" prefixed for IPv6) or "nft:<handle>"
        self.portmap: list[str] = []
        self.ifbs: list[str] = []
        self.cached = False
        self.netns_alive = False
        self.newest: float | None = None  # mtime of its newest reservation or cache entry
        self.verdict = "unknown"

    def key(self) -> tuple[str, str]:
        return self.container_id, self.ifname

    def resources(self) -> set[str]:
        """Everything it holds, as comparable names (for before/after differences)."""
        return ({f"address {a}" for a in self.addresses} | {f"ipMasq {c}" for c in self.ipmasq}
                | {f"portmap {c}" for c in self.portmap} | {f"ifb {i}" for i in self.ifbs}
                | ({"cache entry"} if self.cached else set()))

    def _touch(self, mtime: float) -> None:
        self.newest = mtime if self.newest is None else max(self.newest, mtime)

    def to_json(self, now: float) -> dict[str, Any]:
        return {"containerID": self.container_id, "ifname": self.ifname, "verdict": self.verdict,
                "ageSeconds": None if self.newest is None else max(0, int(now - self.newest)),
                "addresses": self.addresses, "ipMasq": self.ipmasq, "portmap": self.portmap,
                "ifbs": self.ifbs, "cached": self.cached}


class _Builder:
    def __init__(self, network: str) -> None:
        self.network = network
        self.by_key: dict[tuple[str, str], Attachment] = {}

    def get(self, cid: str, ifname: str) -> Attachment:
        att = self.by_key.get((cid, ifname))
        if att is None:
            att = self.by_key[(cid, ifname)] = Attachment(self.network, cid, ifname)
        return att

    def of_container(self, cid: str) -> Attachment:
        """For a resource without an interface: the container's attachment (eth0 first, then the
        first by name; one with no ifname, from an old-format reservation, last)."""
        known = sorted((k for k in self.by_key if k[0] == cid),
                       key=lambda k: (k[1] != "eth0", k[1] == "", k[1]))
        return self.by_key[known[0]] if known else self.get(cid, "")


def build(network: str, state: NodeState) -> list[Attachment]:
    """The attachments of one network, each with its resources, sorted by (container ID, ifname)."""
    b = _Builder(network)
    for hl in state.host_local:
        if hl.network != network:
            continue
        for r in hl.reservations:
            att = b.get(r.container_id, r.ifname)
            att.addresses.append(r.address)
            att._touch(r.mtime)
    for c in state.cache:
        if c.network == network:
            att = b.get(c.container_id, c.ifname)
            att.cached = True
            att.netns_alive = att.netns_alive or c.netns_alive
            att._touch(c.mtime)
    for rule in state.nft_rules:
        if rule.network == network:
            b.get(rule.container_id, rule.ifname).ipmasq.append(f"nft:{rule.handle}")
    for chain in state.chains:
        if chain.network != network:
            continue
        att = b.of_container(chain.container_id)
        name = chain.chain if chain.family == 4 else f"v6:{chain.chain}"
        (att.portmap if chain.kind == "portmap" else att.ipmasq).append(name)
    for ifb in state.ifbs:
        cid = ifb.container_id
        if ifb.network is not None and ifb.network != network:
            continue
        if cid is None:  # untagged, or a tag without the container: match the name to a known one
            cid = next((k[0] for k in list(b.by_key) if ifb_name(network, k[0]) == ifb.name), None)
        if cid is not None and ifb_name(network, cid) == ifb.name:
            b.of_container(cid).ifbs.append(ifb.name)
    return [b.by_key[k] for k in sorted(b.by_key)]


def unowned_ifbs(networks: list[str], state: NodeState) -> list[str]:
    """bandwidth's IFBs (by their name prefixes) that no attachment of the given networks accounts for."""
    owned = {i for net in networks for att in build(net, state) for i in att.ifbs}
    return sorted(i.name for i in state.ifbs if i.name not in owned and is_ifb_name(i.name))


def judge(attachments: list[Attachment], sandboxes: set[str] | None, now: float, grace: float) -> None:
    """Set each attachment's verdict (see the module's description)."""
    for att in attachments:
        if sandboxes is None:
            att.verdict = "unknown"
        elif att.container_id in sandboxes:
            att.verdict = "live"
        elif att.netns_alive:
            att.verdict = "in-use"
        elif att.newest is not None and now - att.newest < grace:
            att.verdict = "young"
        else:
            att.verdict = "leaked"


def valid_attachments(attachments: list[Attachment], sandboxes: set[str]) -> list[dict[str, str]]:
    """GC's `cni.dev/valid-attachments`: every listed sandbox with the runtime's interface names,
    every attachment of the node whose container is a listed sandbox, and the young ones."""
    keys = {(s, ifname) for s in sandboxes for ifname in RUNTIME_IFNAMES}
    for att in attachments:
        if att.verdict != "leaked":
            keys.add((att.container_id, att.ifname or RUNTIME_IFNAMES[0]))
    return [{"containerID": cid, "ifname": ifname} for cid, ifname in sorted(keys)]
