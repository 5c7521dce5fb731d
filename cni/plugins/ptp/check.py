"""ptp CHECK: after the IPAM plugin's own CHECK, the container interface, its addresses (each with
a route to its prefix) and the routes of prevResult, as the reference checks them."""

from __future__ import annotations

from cni.contract import delegate
from cni.contract.errors import INTERNAL, CNIError
from cni.contract.request import Request
from cni.contract.result import Result
from cni.net import addr, link, netns, route
from cni.net.netlink import Handle

from . import config, routes


def _bad(msg: str, details: str = "") -> CNIError:
    return CNIError(INTERNAL, msg, details)


def check(req: Request) -> None:
    config.load(req.config)  # what ADD would refuse is refused here too
    delegate.ipam(req, "CHECK")
    prev = req.prev_result
    if prev is None:
        raise _bad("ptp: Required prevResult missing", "CHECK compares the system with the ADD result")
    cont_if = next((i for i in prev.interfaces if i.name == req.ifname and i.sandbox == req.netns), None)
    if cont_if is None:
        raise _bad(f"Sandbox in prevResult doesn't match configured netns: {req.netns}",
                   f"prevResult lists no {req.ifname} in {req.netns}")
    with netns.open_handle(req.netns) as cont:
        dev = link.get_link(cont, cont_if.name)
        if dev is None:
            raise _bad(f"ptp: Container Interface name in prevResult: {cont_if.name} not found")
        if dev.kind != "veth":
            raise _bad(f"Error: Container interface {dev.name} not of type veth/p2p",
                       f"it is {dev.kind or 'a device'}")
        if cont_if.mac and cont_if.mac.lower() != dev.mac:
            raise _bad(f"ptp: Interface {cont_if.name} Mac {cont_if.mac} doesn't match container Mac: "
                       f"{dev.mac}")
        _check_ips(cont, dev, prev)
        _check_routes(cont, prev)


def _check_ips(h: Handle, dev: link.Link, prev: Result) -> None:
    """Each address of prevResult on the interface with its prefix, and a route to its prefix."""
    present = {(a.raw, a.prefixlen) for a in addr.list_addresses(h, index=dev.index)}
    table = route.list_routes(h)
    for ip in prev.ips:
        if (ip.address.ip.packed, ip.address.network.prefixlen) not in present:
            raise _bad(f"Failed to match addr {ip.address} on interface {dev.name}")
        prefix = routes.subnet(ip)
        if not any(str(r.dst) == str(prefix) for r in table):
            raise _bad(f"Failed to find Gateway {ip.gateway} for interface {dev.name}",
                       f"no route to {prefix}")


def _check_routes(h: Handle, prev: Result) -> None:
    table = route.list_routes(h)
    for r in prev.routes:
        dst = str(r.dst)
        found = [x for x in table if str(x.dst) == dst and (r.gw is None or str(x.gw) == str(r.gw))]
        if not found:
            via = f" via {r.gw}" if r.gw is not None else ""
            raise _bad(f"Expected Route {dst}{via} not found in routing table")
