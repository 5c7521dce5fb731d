"""libcni's result cache (`/var/lib/cni/results`): one file per attachment a runtime ADDed."""

from __future__ import annotations

import json
import os
from typing import Any, NamedTuple

from .edges import read_file

CACHE_DIR = "/var/lib/cni/results"


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
            raw = json.loads(read_file(path))
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
