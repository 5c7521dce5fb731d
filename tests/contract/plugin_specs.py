"""Per-plugin knowledge the executable contract tests need: a valid config, what ADD must show.

Every plugin type built into the bundle needs an entry here; `test_every_built_plugin_has_a_spec`
fails otherwise, so a new plugin joins the version matrix and the bad-input suite by adding one.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers import addresses, ip_json, link

ALL_VERSIONS = ("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")


@dataclass
class Ctx:
    """What one test gives a plugin: a namespace, a private state dir, unique names."""

    netns: Any  # None for verbs that take no namespace (STATUS, GC)
    state_dir: Path
    bridge: str
    subnet: ipaddress.IPv4Network
    network: str

    @property
    def netns_path(self) -> str:
        return str(getattr(self.netns, "path", ""))

    @property
    def ipam_dir(self) -> Path:
        return self.state_dir / "ipam"

    def ipam(self) -> dict:
        return {"type": "host-local", "subnet": str(self.subnet), "dataDir": str(self.ipam_dir)}

    def reserved(self) -> list[str]:
        """Addresses host-local holds on disk for this network."""
        d = self.ipam_dir / self.network
        if not d.is_dir():
            return []
        return sorted(n for n in os.listdir(d) if n != "lock" and not n.startswith("last_reserved_ip"))


def _in_subnet(address: str, ctx: Ctx) -> bool:
    return ipaddress.ip_interface(address).network == ctx.subnet


def _lo_up(ctx: Ctx) -> bool:
    found = link("lo", ctx.netns)
    assert found is not None
    return "UP" in found["flags"]


# ---------------------------------------------------------------- loopback

def loopback_config(ctx: Ctx, version: str) -> dict:
    return {"cniVersion": version, "name": ctx.network, "type": "loopback"}


def loopback_after_add(out: dict, version: str, ctx: Ctx) -> None:
    assert _lo_up(ctx)
    if version in ("0.1.0", "0.2.0"):
        assert out["ip4"]["ip"] == "127.0.0.1/8"
        return
    assert out["interfaces"] == [{"name": "lo", "mac": "00:00:00:00:00:00", "sandbox": str(ctx.netns.path)}]
    assert "127.0.0.1/8" in [ip["address"] for ip in out["ips"]]
    assert all(ip["interface"] == 0 for ip in out["ips"])


def loopback_after_del(ctx: Ctx) -> None:
    assert not _lo_up(ctx)


# ---------------------------------------------------------------- host-local

def host_local_config(ctx: Ctx, version: str) -> dict:
    return {"cniVersion": version, "name": ctx.network, "type": "host-local", "ipam": ctx.ipam()}


def host_local_after_add(out: dict, version: str, ctx: Ctx) -> None:
    if version in ("0.1.0", "0.2.0"):
        address = out["ip4"]["ip"]
    else:
        assert "interfaces" not in out
        assert len(out["ips"]) == 1 and "interface" not in out["ips"][0]
        address = out["ips"][0]["address"]
    assert _in_subnet(address, ctx)
    assert ctx.reserved() == [address.split("/")[0]]


def host_local_after_del(ctx: Ctx) -> None:
    assert ctx.reserved() == []


# ---------------------------------------------------------------- bridge

def bridge_config(ctx: Ctx, version: str) -> dict:
    return {"cniVersion": version, "name": ctx.network, "type": "bridge", "bridge": ctx.bridge,
            "isGateway": False, "ipam": ctx.ipam()}


def bridge_after_add(out: dict, version: str, ctx: Ctx) -> None:
    if version in ("0.1.0", "0.2.0"):
        address = out["ip4"]["ip"]
    else:
        names = [i["name"] for i in out["interfaces"]]
        assert ctx.bridge in names and "eth0" in names
        eth0 = names.index("eth0")
        assert out["interfaces"][eth0]["sandbox"] == str(ctx.netns.path)
        assert out["ips"][0]["interface"] == eth0
        address = out["ips"][0]["address"]
    assert _in_subnet(address, ctx)
    assert addresses("eth0", ctx.netns) == [address]
    assert ctx.reserved() == [address.split("/")[0]]


def bridge_after_del(ctx: Ctx) -> None:
    assert link("eth0", ctx.netns) is None
    assert ctx.reserved() == []


# ---------------------------------------------------------------- ptp

def ptp_config(ctx: Ctx, version: str) -> dict:
    return {"cniVersion": version, "name": ctx.network, "type": "ptp", "ipam": ctx.ipam()}


def ptp_after_add(out: dict, version: str, ctx: Ctx) -> None:
    if version in ("0.1.0", "0.2.0"):
        address, gateway = out["ip4"]["ip"], out["ip4"]["gateway"]
    else:
        assert [i["name"] for i in out["interfaces"]][1] == "eth0"
        assert out["interfaces"][0]["name"].startswith("veth") and "sandbox" not in out["interfaces"][0]
        assert out["interfaces"][1]["sandbox"] == str(ctx.netns.path)
        assert out["ips"][0]["interface"] == 1
        address, gateway = out["ips"][0]["address"], out["ips"][0]["gateway"]
    assert _in_subnet(address, ctx)
    assert addresses("eth0", ctx.netns) == [address]
    assert ctx.reserved() == [address.split("/")[0]]
    peer = link("eth0", ctx.netns)["link_index"]
    (host_end,) = [e["ifname"] for e in ip_json("link", "show") if e["ifindex"] == peer]
    assert addresses(host_end) == [f"{gateway}/32"]


# ---------------------------------------------------------------- bandwidth

def bandwidth_prev_result(ctx: Ctx, version: str) -> dict:
    """A bridge-like result in the given version, for bandwidth to pass through (no limits set)."""
    address = str(next(ctx.subnet.hosts())) + f"/{ctx.subnet.prefixlen}"
    ip: dict[str, Any] = {"interface": 1, "address": address}
    if version in ("0.3.0", "0.3.1", "0.4.0"):
        ip = {"version": "4", **ip}
    return {"cniVersion": version,
            "interfaces": [{"name": "vethpeer0"}, {"name": "eth0", "sandbox": ctx.netns_path}],
            "ips": [ip], "dns": {"nameservers": ["10.96.0.10"]}}


def bandwidth_config(ctx: Ctx, version: str) -> dict:
    config = {"cniVersion": version, "name": ctx.network, "type": "bandwidth"}
    if version not in ("0.1.0", "0.2.0"):
        config["prevResult"] = bandwidth_prev_result(ctx, version)
    return config


def bandwidth_after_add(out: dict, version: str, ctx: Ctx) -> None:
    assert out == bandwidth_prev_result(ctx, version)


# ---------------------------------------------------------------- portmap

def portmap_prev_result(ctx: Ctx, version: str) -> dict:
    """bandwidth's, or for 0.1.0/0.2.0 (which portmap speaks, as the reference) the old form."""
    if version not in ("0.1.0", "0.2.0"):
        return bandwidth_prev_result(ctx, version)
    address = str(next(ctx.subnet.hosts())) + f"/{ctx.subnet.prefixlen}"
    return {"cniVersion": version, "ip4": {"ip": address}, "dns": {"nameservers": ["10.96.0.10"]}}


def portmap_config(ctx: Ctx, version: str) -> dict:
    """No mappings: portmap passes prevResult through and touches nothing."""
    return {"cniVersion": version, "name": ctx.network, "type": "portmap",
            "prevResult": portmap_prev_result(ctx, version)}


def portmap_after_add(out: dict, version: str, ctx: Ctx) -> None:
    assert out == portmap_prev_result(ctx, version)


def nothing_after_del(ctx: Ctx) -> None:
    """Nothing of the plugin's own to look for."""


@dataclass
class Spec:
    """How to drive one plugin type through the matrix."""

    versions: tuple[str, ...]
    config: Callable[[Ctx, str], dict]
    after_add: Callable[[dict, str, Ctx], None]
    after_del: Callable[[Ctx], None]
    touches_host: bool = False  # may change the host namespace: snapshot its firewall too


SPECS: dict[str, Spec] = {
    "loopback": Spec(ALL_VERSIONS, loopback_config, loopback_after_add, loopback_after_del),
    "host-local": Spec(ALL_VERSIONS, host_local_config, host_local_after_add, host_local_after_del),
    "bridge": Spec(ALL_VERSIONS, bridge_config, bridge_after_add, bridge_after_del, touches_host=True),
    "ptp": Spec(ALL_VERSIONS, ptp_config, ptp_after_add, bridge_after_del, touches_host=True),
    "bandwidth": Spec(ALL_VERSIONS[2:], bandwidth_config, bandwidth_after_add, nothing_after_del,
                      touches_host=True),
    "portmap": Spec(ALL_VERSIONS, portmap_config, portmap_after_add, nothing_after_del,
                    touches_host=True),
}
