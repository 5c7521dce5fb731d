"""bridge CHECK: the reference's checks of the bridge, the veth pair and the container's addresses
and routes against prevResult, after the IPAM plugin's own CHECK."""

from __future__ import annotations

from cni.contract import delegate
from cni.contract.errors import INTERNAL, CNIError
from cni.contract.request import Request
from cni.contract.result import Interface, Result
from cni.net import addr, link, netns, route
from cni.net.netlink import Handle

from . import config


def _bad(msg: str, details: str = "") -> CNIError:
    return CNIError(INTERNAL, msg, details)


def check(req: Request) -> None:
    conf = config.load(req.config, req.args)
    if conf.layer3:
        delegate.ipam(req, "CHECK")
    prev = req.prev_result
    if prev is None:
        raise _bad("Required prevResult missing", "CHECK compares the system with the ADD result")
    bridge_if = next((i for i in prev.interfaces if i.name == conf.bridge), None)
    cont_if = next((i for i in prev.interfaces if i.name == req.ifname and i.sandbox == req.netns), None)
    if bridge_if is None:
        raise _bad(f"CNI created bridge {conf.bridge} in host namespace was not found",
                   "prevResult lists no interface of that name")
    if cont_if is None:
        raise _bad(f"Sandbox in prevResult doesn't match configured netns: {req.netns}",
                   f"prevResult lists no {req.ifname} in {req.netns}")
    with Handle() as host, netns.open_handle(req.netns) as cont:
        br = _check_bridge(host, bridge_if, conf.promisc)
        inner = _check_container(cont, cont_if)
        _find_host_veth(host, prev.interfaces, bridge_if, cont_if, br, inner, conf.bridge)
        _check_ips(cont, inner, prev)
        _check_routes(cont, prev)


def _check_bridge(h: Handle, intf: Interface, promisc: bool) -> link.Link:
    if intf.sandbox:
        raise _bad(f"Interface {intf.name} should not be in sandbox")
    br = link.get_link(h, intf.name)
    if br is None:
        raise _bad(f"Interface name {intf.name} not found")
    if br.kind != "bridge":
        raise _bad(f"Interface {intf.name} does not have link type of bridge")
    if intf.mac and intf.mac.lower() != br.mac:
        raise _bad(f"Bridge interface {intf.name} Mac doesn't match: {intf.mac}", f"it is {br.mac}")
    if br.promisc != promisc:
        raise _bad(f"Bridge interface {intf.name} configured Promisc Mode {str(promisc).lower()} "
                   f"doesn't match current state: {str(br.promisc).lower()}")
    return br


def _check_container(h: Handle, intf: Interface) -> link.Link:
    dev = link.get_link(h, intf.name)
    if dev is None:
        raise _bad(f"Interface name {intf.name} not found", f"not in {intf.sandbox}")
    if dev.kind != "veth":
        raise _bad(f"Error: Container interface {intf.name} not of type veth", f"it is {dev.kind}")
    if intf.mac and intf.mac.lower() != dev.mac:
        raise _bad(f"Interface {intf.name} Mac {intf.mac} doesn't match container Mac: {dev.mac}")
    return dev


def _find_host_veth(h: Handle, interfaces: list[Interface], bridge_if: Interface, cont_if: Interface,
                    br: link.Link, inner: link.Link, bridge_name: str) -> None:
    """Some other interface of prevResult must be the container end's peer, on the bridge."""
    for intf in interfaces:
        if intf.name in (bridge_if.name, cont_if.name):
            continue
        dev = link.get_link(h, intf.name)
        if dev is None:
            raise _bad(f"Interface name {intf.name} not found")
        if intf.sandbox:
            raise _bad(f"Interface {intf.name} should not be in sandbox")
        if dev.kind != "veth":
            continue  # not one the plugin made
        if dev.index != inner.link or dev.link != inner.index or dev.master != br.index:
            continue
        if intf.mac and intf.mac.lower() != dev.mac:
            raise _bad(f"Interface {intf.name} Mac doesn't match: {intf.mac} not found")
        return
    raise _bad(f"CNI veth created for bridge {bridge_name} was not found",
               f"no host veth in prevResult is the peer of {cont_if.name} and a port of {bridge_name}")


def _check_ips(h: Handle, dev: link.Link, prev: Result) -> None:
    present = {a.ip for a in addr.list_addresses(h, index=dev.index)}
    for ip in prev.ips:
        if ip.interface is not None and not (0 <= ip.interface < len(prev.interfaces)
                                             and prev.interfaces[ip.interface].name == dev.name):
            continue
        if ip.address not in present:
            raise _bad(f"Failed to match addr {ip.address} on interface {dev.name}",
                       f"it has {', '.join(sorted(map(str, present))) or 'no addresses'}")


def _check_routes(h: Handle, prev: Result) -> None:
    routes = route.list_routes(h, table=None)
    for r in prev.routes:
        found = [x for x in routes if x.dst == r.dst and (r.gw is None or x.gw == r.gw)]
        if not found:
            via = f" via {r.gw}" if r.gw is not None else ""
            raise _bad(f"Failed to match route {r.dst}{via} in the container",
                       "the route prevResult lists is missing")
