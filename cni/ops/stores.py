"""host-local's stores as the operator sees them: how full each range is, who holds which address."""

from __future__ import annotations

import os
from typing import NamedTuple

from .edges import read_file
from .libcni import NetList, plugin_config


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


def host_local(lst: NetList) -> list[HostLocal]:
    """The host-local stores the list's plugins name in their `ipam` sections."""
    from cni.contract.errors import CNIError
    from cni.layout import hostlocal as layout
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
            cfg = config.parse(conf, {}, lst.version, read_file=read_file)
            data_dir = cfg.data_dir
            reservations: list[Reservation] = []
            held = []
            if Store.exists(cfg.data_dir, cfg.name):
                with Store(cfg.data_dir, cfg.name, create=False) as store:
                    for name, data in store.reservations():
                        cid, ifname = layout.owner_of(data, errors="replace")
                        try:
                            mtime = os.stat(os.path.join(store.path, name), follow_symlinks=False).st_mtime
                        except OSError:
                            continue  # released while we looked
                        reservations.append(Reservation(name, cid, ifname or "", mtime))
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
