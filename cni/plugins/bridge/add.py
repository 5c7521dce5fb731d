"""bridge ADD, in order: the bridge (created if missing), the veth pair with the container end named
CNI_IFNAME, the host end's port flags and VLANs, the MAC spoof check, IPAM, the container's sysctls,
addresses and routes, the gateway address on the bridge, IP forwarding, masquerading, and finally
the wait for the port to come up. Anything failing after a step made something undoes what this
ADD made, in reverse (the bridge stays; the address is released).
"""

from __future__ import annotations

from cni.contract import delegate, veth_attachment
from cni.contract.errors import internal as fail
from cni.contract.result import DNS, Interface, Result
from cni.net import link

from . import config, gateways
from .container import configure_container
from .host import (
    attach_port,
    bridge_lock,
    create_veth,
    ensure_address,
    ensure_bridge,
    ensure_vlan_gateway,
    freeze_mac,
    wait_port_up,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cni.contract.request import Request
    from cni.net.netlink import Handle
    from cni.undo import Undo


def add(req: Request) -> Result:
    conf = config.load(req.config, req.args)
    if conf.layer3:
        delegate.find_ipam(conf.ipam_type, req)  # a missing or wrong IPAM fails before anything is made
    return veth_attachment.add_undoable(
        "bridge", req.netns, lambda host, cont, undo: _add(req, conf, host, cont, undo))


def _add(req: Request, conf: config.BridgeConf, host: Handle, cont: Handle, undo: Undo) -> Result:
    br, outer, inner = _attach(req, conf, host, cont, undo)
    result = Result(interfaces=[
        Interface(name=br.name),
        Interface(name=outer.name),
        Interface(name=inner.name, mac=inner.mac, sandbox=req.netns),
    ])
    if conf.layer3:
        _addresses(req, conf, host, cont, br, inner, result, undo)
    elif not conf.disable_container_interface:
        try:
            link.set_link(cont, inner.index, up=True)
        except OSError as e:
            raise fail(f'failed to set "{req.ifname}" up: {e}', e) from None
    return _finish(conf, host, br, outer, result)


def _attach(req: Request, conf: config.BridgeConf, host: Handle, cont: Handle,
            undo: Undo) -> tuple[link.Link, link.Link, link.Link]:
    """Layer 2: the bridge, the veth pair on it, the spoof check: (bridge, host end, container end)."""
    with bridge_lock():
        br = ensure_bridge(host, conf)
    outer, inner = create_veth(host, cont, req.ifname, conf.mtu, conf.mac)
    undo.push(f"delete {req.ifname}", lambda: link.delete_link(cont, inner.index))
    attach_port(host, outer, br, config.container_port(conf))
    if conf.macspoofchk:
        from . import rules  # the firewall is imported only by attachments that use it

        rules.setup_spoofcheck(outer.name, inner.mac, req.container_id, req.ifname)
        undo.push("remove spoof check", lambda: rules.teardown_spoofcheck(req.container_id, req.ifname))
    return br, outer, inner


def _addresses(req: Request, conf: config.BridgeConf, host: Handle, cont: Handle, br: link.Link,
               inner: link.Link, result: Result, undo: Undo) -> None:
    """Layer 3: the addresses from IPAM in the container, the gateway on the host, masquerading."""
    ipam = delegate.ipam(req, "ADD")
    undo.push("release the address (IPAM DEL)", lambda: delegate.ipam(req, "DEL"))
    if ipam is None or not ipam.ips:
        raise fail("IPAM plugin returned missing IP config", f"{conf.ipam_type} returned no addresses")
    result.ips, result.routes, result.dns = ipam.ips, ipam.routes, ipam.dns
    planned = gateways.plan(result, conf.is_gateway, conf.is_default_gateway)
    configure_container(cont, req.netns, inner, result.ips, result.routes, conf.enable_dad)
    if planned[4] or planned[6]:
        _gateway(conf, host, br, planned, result, undo)
    if conf.ip_masq:
        veth_attachment.masquerade(req, conf.ip_masq_backend, result.ips, undo)


def _gateway(conf: config.BridgeConf, host: Handle, br: link.Link, planned: dict[int, list],
             result: Result, undo: Undo) -> None:
    """The gateway addresses on the bridge (or on `<bridge>.<vlan>`), then forwarding per family."""
    target, what = br, "failed to set bridge addr"
    if conf.access_vlan:
        target = ensure_vlan_gateway(host, br, conf)
        what = "failed to set vlan interface for bridge with addr"
        result.interfaces.append(Interface(name=target.name, mac=target.mac))
    with bridge_lock():
        for gw in planned[4] + planned[6]:
            ensure_address(host, target, gw, conf.force_address, undo, what)
        freeze_mac(host, target)
    veth_attachment.enable_forwarding([v for v in (4, 6) if planned[v]], "failed to enable forwarding")


def _finish(conf: config.BridgeConf, host: Handle, br: link.Link, outer: link.Link, result: Result) -> Result:
    """Wait for the port, then report the bridge and host end as they are now (MACs may have changed)."""
    if not conf.disable_container_interface:
        outer = wait_port_up(host, outer)
    else:
        outer = link.get_link(host, outer.index) or outer
    br = link.get_link(host, br.index) or br
    result.interfaces[0] = Interface(name=br.name, mac=br.mac)  # no MTUs, as the reference's result
    result.interfaces[1] = Interface(name=outer.name, mac=outer.mac)
    if conf.dns is not None:
        result.dns = DNS.from_json(conf.dns)
    return result
