"""bandwidth's IFB devices, with the owner each one's tag records (`cni.layout.bandwidth`)."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from cni.layout import bandwidth

from .edges import run_tool


class Ifb(NamedTuple):
    name: str
    network: str | None  # from pycni's tag; None for an untagged (the reference plugin's) IFB
    container_id: str | None


def ifbs(links: list[dict[str, Any]]) -> list[Ifb]:
    """IFB devices from `ip -d -j link show type ifb`, with the owner pycni's tag names."""
    out = []
    for link in links:
        tag = bandwidth.parse_alias(str(link.get("ifalias", "")))
        name = str(link.get("ifname", ""))
        out.append(Ifb(name, tag.network, tag.container_id) if tag else Ifb(name, None, None))
    return out


def read_ifbs(errors: list[str]) -> list[Ifb]:
    links, why = run_tool(["ip", "-d", "-j", "link", "show", "type", "ifb"])
    if links is None:
        errors.append(why or "ip (iproute2) is not installed: IFB devices are not listed")
        return []
    try:
        return ifbs(json.loads(links or "[]"))
    except ValueError:
        errors.append("ip -j link printed no JSON")
        return []
