"""Traffic control over one `Handle`: tbf and ingress qdiscs, the u32 mirred redirect filter.

This module encodes what it is given; the bandwidth plugin does the arithmetic (rate,
burst, limit, buffer) with the tick helpers below, which read /proc/net/psched as tc does.
Units: rates in bytes per second, sizes in bytes, `buffer` in scheduler ticks.
"""

from __future__ import annotations

import _socket
import struct

from cni.net import netlink as nl
from cni.net.netlink import Handle
from cni.record import Record

RTM_NEWQDISC, RTM_DELQDISC, RTM_GETQDISC = 36, 37, 38
RTM_NEWTFILTER, RTM_GETTFILTER = 44, 46

TCA_KIND = 1
TCA_OPTIONS = 2

TC_H_ROOT = 0xFFFFFFFF
TC_H_INGRESS = 0xFFFFFFF1  # also the parent of a clsact qdisc
INGRESS_HANDLE = 0xFFFF0000  # "ffff:", the handle of ingress/clsact and the parent of their filters
CLSACT_INGRESS = 0xFFFFFFF2  # "ffff:fff2", filters on the ingress hook of clsact
ETH_P_ALL = 0x0003

TCA_TBF_PARMS = 1
TCA_TBF_RTAB = 2
TCA_TBF_RATE64 = 4
TCA_TBF_BURST = 6
TC_LINKLAYER_ETHERNET = 1

TCA_U32_CLASSID = 1
TCA_U32_SEL = 5
TCA_U32_ACT = 7
TC_U32_TERMINAL = 1

TCA_ACT_KIND = 1
TCA_ACT_OPTIONS = 2
TCA_MIRRED_PARMS = 2
TCA_EGRESS_REDIR = 1
TC_ACT_STOLEN = 4

U32_MAX = 0xFFFFFFFF

_TCMSG = struct.Struct("=BxxxiIII")  # family, ifindex, handle, parent, info
_RATESPEC = struct.Struct("=BBHhHI")  # cell_log, linklayer, overhead, cell_align, mpu, rate
_TBF_TAIL = struct.Struct("=III")  # limit, buffer, mtu
_U32_SEL = struct.Struct("=BBBxHHhhI")  # flags, offshift, nkeys, offmask, off, offoff, hoff, hmask
_U32_KEY = struct.Struct("=IIii")  # mask, val, off, offmask
_MIRRED = struct.Struct("=IIiiiiI")  # index, capab, action, refcnt, bindcnt, eaction, ifindex


def handle(major: int, minor: int = 0) -> int:
    """tc's "major:minor" as one number: handle(1) is "1:", handle(1, 1) is "1:1"."""
    return (major << 16) | minor


# --- scheduler clock -----------------------------------------------------------------------

_tick_in_usec: float | None = None


def tick_in_usec() -> float:
    """Scheduler ticks per microsecond, from /proc/net/psched (15.625 on current kernels)."""
    global _tick_in_usec
    if _tick_in_usec is None:
        with open("/proc/net/psched", "rb") as f:  # bytes: no codec module to import
            t2us, us2t, clock_res = (int(x, 16) for x in f.read().split()[:3])
        if clock_res == 1000000000:  # very old kernels reported the clock this way
            t2us = us2t
        factor = clock_res / 1e6 or 1.0
        _tick_in_usec = t2us / us2t * factor
    return _tick_in_usec


def xmittime(rate: int, size: int) -> int:
    """Ticks needed to send `size` bytes at `rate` bytes/s, rounded as tc does.

    `tc ... tbf rate R burst B` sends buffer = xmittime(R, B); not clamped to 32 bits here.
    """
    return int(int(1e6 * size / rate) * tick_in_usec())


# --- qdiscs ---------------------------------------------------------------------------------


class Qdisc(Record):
    """A queueing discipline; `rate` (bytes/s), `buffer` (ticks), `limit` (bytes): tbf only."""

    __slots__ = ("buffer", "handle", "index", "kind", "limit", "parent", "rate")
    _defaults = {"rate": None, "buffer": None, "limit": None}
    index: int
    kind: str
    handle: int
    parent: int
    rate: int | None
    buffer: int | None
    limit: int | None


def _tcmsg(index: int, handle_: int, parent: int, info: int = 0) -> bytes:
    return _TCMSG.pack(0, index, handle_, parent, info)


def _u32(name: str, value: int) -> int:
    if not 0 <= value <= U32_MAX:
        raise ValueError(f"tbf {name} {value} does not fit in 32 bits")
    return value


def add_tbf(
    h: Handle,
    index: int,
    rate: int,
    buffer: int,
    limit: int,
    burst: int | None = None,
    handle: int = 0x10000,
    parent: int = TC_H_ROOT,
    replace: bool = False,
) -> None:
    """Install a tbf qdisc: rate in bytes/s, buffer in ticks, limit in bytes.

    With `burst` (bytes) the message matches `tc qdisc add dev X root handle 1: tbf rate R
    burst B latency L` exactly, and the kernel derives the bucket from it; without, the
    kernel uses `buffer`, as the reference bandwidth plugin sends it.  A rate of 2^32 or
    more goes in TCA_TBF_RATE64.  FileExistsError if a root qdisc is already there.
    """
    if rate <= 0:
        raise ValueError("tbf rate must be positive")
    rate32 = min(rate, U32_MAX)
    # tc's rate table: 256 slots covering packets up to 2047 bytes (cell_log 3).
    cell_log = 3
    rtab = struct.pack("=256I", *(min(xmittime(rate32, (i + 1) << cell_log), U32_MAX) for i in range(256)))
    spec = _RATESPEC.pack(cell_log, TC_LINKLAYER_ETHERNET, 0, -1, 0, rate32)
    parms = spec + bytes(_RATESPEC.size) + _TBF_TAIL.pack(_u32("limit", limit), _u32("buffer", buffer), 0)
    opts = nl.attr(TCA_TBF_PARMS, parms)
    if burst is not None:
        opts += nl.attr_u32(TCA_TBF_BURST, _u32("burst", burst))
    if rate > U32_MAX:
        opts += nl.attr_u64(TCA_TBF_RATE64, rate)
    opts += nl.attr(TCA_TBF_RTAB, rtab)
    body = _tcmsg(index, handle, parent) + nl.attr_str(TCA_KIND, "tbf") + nl.attr(TCA_OPTIONS, opts)
    flags = nl.NLM_F_CREATE | (nl.NLM_F_REPLACE if replace else nl.NLM_F_EXCL)
    h.request(RTM_NEWQDISC, body, f"add tbf qdisc on link {index}", flags)


def add_ingress_qdisc(h: Handle, index: int) -> None:
    """`tc qdisc add dev X ingress` (handle ffff:).

    FileExistsError if an ingress or clsact qdisc is already there: check `list_qdiscs`
    and reuse it (filters go under INGRESS_HANDLE for ingress, CLSACT_INGRESS for clsact).
    """
    body = _tcmsg(index, INGRESS_HANDLE, TC_H_INGRESS) + nl.attr_str(TCA_KIND, "ingress")
    h.request(RTM_NEWQDISC, body, f"add ingress qdisc on link {index}", nl.NLM_F_CREATE | nl.NLM_F_EXCL)


def delete_qdisc(h: Handle, index: int, parent: int = TC_H_ROOT, handle: int = 0) -> None:
    """Delete the qdisc at `parent` (TC_H_ROOT, or TC_H_INGRESS for ingress/clsact)."""
    h.request(RTM_DELQDISC, _tcmsg(index, handle, parent), f"delete qdisc {parent:#x} on link {index}")


def list_qdiscs(h: Handle, index: int | None = None) -> list[Qdisc]:
    """Qdiscs of one link (or all links), with tbf parameters decoded."""
    out = []
    for msg_type, reply in h.dump(RTM_GETQDISC, _tcmsg(index or 0, 0, 0), "list qdiscs"):
        if msg_type != RTM_NEWQDISC:
            continue
        _fam, qindex, qhandle, qparent, _info = _TCMSG.unpack_from(reply)
        if index is not None and qindex != index:
            continue
        a = nl.parse_attrs(reply, _TCMSG.size)
        q = Qdisc(index=qindex, kind=nl.cstr(a.get(TCA_KIND, b"")), handle=qhandle, parent=qparent)
        if q.kind == "tbf":
            opts = nl.parse_attrs(a.get(TCA_OPTIONS, b""))
            parms = opts.get(TCA_TBF_PARMS)
            if parms and len(parms) >= 2 * _RATESPEC.size + _TBF_TAIL.size:
                q.rate = _RATESPEC.unpack_from(parms)[5]
                q.limit, q.buffer, _mtu = _TBF_TAIL.unpack_from(parms, 2 * _RATESPEC.size)
            if TCA_TBF_RATE64 in opts:
                q.rate = nl.u64(opts[TCA_TBF_RATE64])
        out.append(q)
    return out


# --- filters ----------------------------------------------------------------------------


class Action(Record):
    """A tc action; for mirred, `eaction` (1 = egress redirect) and `target` ifindex."""

    __slots__ = ("eaction", "kind", "target", "verdict")
    _defaults = {"verdict": None, "eaction": None, "target": None}
    kind: str
    verdict: int | None
    eaction: int | None
    target: int | None


class Filter(Record):
    """A classifier.  u32 lists its hash table ("800:") as a filter without actions."""

    __slots__ = ("actions", "classid", "handle", "index", "kind", "parent", "prio", "protocol")
    _defaults = {"classid": None}
    index: int
    kind: str
    prio: int
    protocol: int
    handle: int
    parent: int
    classid: int | None
    actions: list[Action]


def _info(prio: int, protocol: int) -> int:
    return (prio << 16) | _socket.htons(protocol)


def add_mirred_redirect_filter(
    h: Handle,
    index: int,
    target: int,
    parent: int = INGRESS_HANDLE,
    prio: int = 1,
    protocol: int = ETH_P_ALL,
    classid: int = 0x10001,
) -> None:
    """`tc filter add dev X parent ffff: protocol all prio 1 u32 match u32 0 0 flowid 1:1
    action mirred egress redirect dev <target>`: everything arriving on X goes to `target`."""
    sel = _U32_SEL.pack(TC_U32_TERMINAL, 0, 1, 0, 0, 0, 0, 0) + _U32_KEY.pack(0, 0, 0, 0)
    mirred = _MIRRED.pack(0, 0, TC_ACT_STOLEN, 0, 0, TCA_EGRESS_REDIR, target)
    action = nl.attr_str(TCA_ACT_KIND, "mirred") + nl.nest(TCA_ACT_OPTIONS, nl.attr(TCA_MIRRED_PARMS, mirred))
    opts = nl.attr_u32(TCA_U32_CLASSID, classid) + nl.attr(TCA_U32_SEL, sel)
    opts += nl.nest(TCA_U32_ACT, nl.nest(1, action))
    body = _tcmsg(index, 0, parent, _info(prio, protocol)) + nl.attr_str(TCA_KIND, "u32")
    body += nl.attr(TCA_OPTIONS, opts)
    op = f"add mirred redirect filter on link {index} to link {target}"
    h.request(RTM_NEWTFILTER, body, op, nl.NLM_F_CREATE | nl.NLM_F_EXCL)


def _actions(data: bytes) -> list[Action]:
    out = []
    for _prio, payload in nl.iter_attrs(data):
        a = nl.parse_attrs(payload)
        act = Action(kind=nl.cstr(a.get(TCA_ACT_KIND, b"")))
        if act.kind == "mirred":
            parms = nl.parse_attrs(a.get(TCA_ACT_OPTIONS, b"")).get(TCA_MIRRED_PARMS)
            if parms and len(parms) >= _MIRRED.size:
                _i, _c, act.verdict, _r, _b, act.eaction, act.target = _MIRRED.unpack_from(parms)
        out.append(act)
    return out


def list_filters(h: Handle, index: int, parent: int = INGRESS_HANDLE) -> list[Filter]:
    """Filters of link `index` under `parent`, with u32 class ids and mirred actions decoded."""
    out = []
    for msg_type, reply in h.dump(RTM_GETTFILTER, _tcmsg(index, 0, parent), f"list filters of link {index}"):
        if msg_type != RTM_NEWTFILTER:
            continue
        _fam, findex, fhandle, fparent, info = _TCMSG.unpack_from(reply)
        a = nl.parse_attrs(reply, _TCMSG.size)
        f = Filter(
            index=findex,
            kind=nl.cstr(a.get(TCA_KIND, b"")),
            prio=info >> 16,
            protocol=_socket.ntohs(info & 0xFFFF),
            handle=fhandle,
            parent=fparent,
            actions=[],
        )
        if f.kind == "u32":
            opts = nl.parse_attrs(a.get(TCA_OPTIONS, b""))
            if TCA_U32_CLASSID in opts:
                f.classid = nl.u32(opts[TCA_U32_CLASSID])
            f.actions = _actions(opts.get(TCA_U32_ACT, b""))
        out.append(f)
    return out
