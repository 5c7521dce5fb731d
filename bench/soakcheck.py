"""The soak's pure rules: which chain it runs, and what counts as a duplicate or a leftover.

Everything here works on data already read (configs, ADD results, file names, `iptables-save`
and `nft list ruleset` text), so it is tested without a kernel; `bench/soak.py` does the reading.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cni.layout import hostlocal as layout
from cni.layout.portmap import SHARED_CHAINS  # kept when the last attachment goes, by design

HEX_ID = re.compile(r"[0-9a-f]{64}")


def example_plugins(conflists: Iterable[Path]) -> list[dict[str, Any]]:
    """The plugins of the example lists, in order, one entry per type (the first list that has it).

    The soak runs the chain the project ships as its example, so a plugin added to the examples
    (portmap, for one) joins the soak without a change here.
    """
    seen: dict[str, dict[str, Any]] = {}
    for path in sorted(conflists):
        for plugin in json.loads(path.read_text()).get("plugins", []):
            seen.setdefault(plugin["type"], dict(plugin))
    return list(seen.values())


def soak_plugins(plugins: list[dict[str, Any]], bridge: str, subnet: str, gateway: str,
                 data_dir: str) -> list[dict[str, Any]]:
    """The example chain made private to one side: its own bridge, /24 and dataDir, ipMasq on."""
    out = []
    for plugin in plugins:
        p = json.loads(json.dumps(plugin))
        if p["type"] == "bridge":
            p.update(bridge=bridge, isGateway=True, ipMasq=True)
            p["ipam"] = {"type": "host-local", "subnet": subnet, "gateway": gateway,
                         "routes": [{"dst": "0.0.0.0/0"}], "dataDir": data_dir}
        out.append(p)
    return out


def ips_of(result: dict[str, Any]) -> list[str]:
    """The addresses (without prefix length) an ADD result hands to the pod."""
    return [ip["address"].split("/")[0] for ip in result.get("ips", [])]


def duplicates(live: dict[str, list[str]]) -> dict[str, list[str]]:
    """Address -> the live pods holding it, for every address held by more than one."""
    holders: dict[str, list[str]] = {}
    for pod, ips in live.items():
        for ip in ips:
            holders.setdefault(ip, []).append(pod)
    return {ip: pods for ip, pods in holders.items() if len(pods) > 1}


def reservations(files: dict[str, bytes]) -> dict[str, str]:
    """host-local's reservation files (name -> content) as address -> owning container ID."""
    return {name: layout.owner_of(content, errors="replace")[0]
            for name, content in files.items() if not layout.is_bookkeeping_name(name)}


def reservation_faults(reserved: dict[str, str], live: dict[str, list[str]]) -> list[str]:
    """What the data directory says that contradicts the live pods, between waves.

    Between waves no call runs, so every reservation belongs to a live pod and every live pod's
    address is reserved for it.
    """
    faults = []
    for ip, owner in sorted(reserved.items()):
        if owner not in live:
            faults.append(f"{ip} reserved by {owner[:12]}, which is not a live pod")
    for pod, ips in sorted(live.items()):
        for ip in ips:
            if reserved.get(ip) != pod:
                faults.append(f"{pod[:12]} holds {ip}, reserved by {reserved.get(ip, 'nobody')[:12]}")
    return faults


def iptables_leftovers(save_text: str, ids: set[str]) -> list[str]:
    """Chains and rules of `iptables-save` output that belong to an attachment.

    An attachment's own chains are named `CNI-<hash>` (masquerade) or `CNI-DN-<hash>` (portmap);
    its rules carry its container ID in their comment. Portmap's shared `CNI-HOSTPORT-*` chains
    are not an attachment's.
    """
    out = []
    for line in save_text.splitlines():
        if line.startswith(":CNI-"):
            chain = line[1:].split(" ", 1)[0]
            if chain not in SHARED_CHAINS:
                out.append(f"chain {chain}")
        elif line.startswith("-A ") and (set(HEX_ID.findall(line)) & ids or " -j CNI-DN-" in line):
            out.append(f"rule {line}")
    return out


def nft_leftovers(ruleset: str, ids: set[str]) -> list[str]:
    """Lines of `nft list ruleset` that name one of the soak's container IDs."""
    return [f"nft {line.strip()}" for line in ruleset.splitlines() if set(HEX_ID.findall(line)) & ids]


def link_leftovers(links: list[dict[str, Any]], keep: set[str]) -> list[str]:
    """Links of `ip -j link show` other than `keep` (lo, the bridge): veths, IFBs."""
    out = []
    for link in links:
        name = link.get("ifname", "")
        if name in keep:
            continue
        kind = (link.get("linkinfo") or {}).get("info_kind", "")
        out.append(f"link {name}" + (f" ({kind})" if kind else ""))
    return out
