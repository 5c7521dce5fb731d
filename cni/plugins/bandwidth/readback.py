"""What bandwidth installed, read back from the kernel: for CHECK and for GC's redirect targets."""

from __future__ import annotations

from cni.contract.errors import INTERNAL, CNIError
from cni.net import link, tc
from cni.net.netlink import Handle

from . import shaping


def check_tbf(host: Handle, dev: link.Link, b: shaping.Bucket, what: str) -> None:
    roots = [q for q in tc.list_qdiscs(host, dev.index) if q.parent == tc.TC_H_ROOT]
    tbf = next((q for q in roots if q.kind == "tbf"), None)
    if tbf is None:
        raise CNIError(INTERNAL, f"{what} limit set but {dev.name} has no tbf root qdisc",
                       f"root qdisc: {', '.join(q.kind for q in roots) or 'none'}")
    for field, want in (("rate", b.rate), ("buffer", b.buffer), ("limit", b.limit)):
        got = getattr(tbf, field)
        if got != want:
            raise CNIError(INTERNAL, f"{what} tbf on {dev.name}: {field} is {got}, expected {want}",
                           "rate in bytes/s, buffer in scheduler ticks, limit in bytes")


def ingress_filters(host: Handle, index: int) -> list[tc.Filter]:
    out: list[tc.Filter] = []
    for q in tc.list_qdiscs(host, index):
        if q.parent != tc.TC_H_INGRESS:
            continue
        parent = tc.CLSACT_INGRESS if q.kind == "clsact" else tc.INGRESS_HANDLE
        out += tc.list_filters(host, index, parent)
    return out


def redirects_to(f: tc.Filter, target: int) -> bool:
    return any(a.kind == "mirred" and a.eaction == tc.TCA_EGRESS_REDIR and a.target == target
               for a in f.actions)


def redirect_targets(host: Handle) -> set[int]:
    """Every ifindex some link's ingress filter redirects to."""
    indexes = {q.index for q in tc.list_qdiscs(host) if q.parent == tc.TC_H_INGRESS}
    return {a.target for i in indexes for f in ingress_filters(host, i) for a in f.actions
            if a.kind == "mirred" and a.target is not None}
