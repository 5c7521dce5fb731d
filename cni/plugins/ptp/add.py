"""ptp ADD, in the reference's order: IPAM, forwarding, the veth pair, the container end (addresses,
routes), the host end (gateways, host routes), masquerading, the DNS of the config. Anything failing
after a step made something undoes what this ADD made, in reverse (the address is released)."""

from __future__ import annotations

from cni.contract import delegate, veth_attachment
from cni.contract.errors import internal as fail
from cni.contract.result import DNS, Interface, Result
from cni.net import link

from . import config, container, host, routes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cni.contract.request import Request
    from cni.net.netlink import Handle
    from cni.undo import Undo


def add(req: Request) -> Result:
    conf = config.load(req.config)
    delegate.find_ipam(conf.ipam_type, req)  # a missing or wrong IPAM fails before anything is made
    return veth_attachment.add_undoable(
        "ptp", req.netns, lambda host_h, cont, undo: _add(req, conf, host_h, cont, undo))


def _add(req: Request, conf: config.PtpConf, host_h: Handle, cont: Handle, undo: Undo) -> Result:
    ipam = delegate.ipam(req, "ADD")
    undo.push("release the address (IPAM DEL)", lambda: delegate.ipam(req, "DEL"))
    if ipam is None or not ipam.ips:
        raise fail("IPAM plugin returned missing IP config", f"{conf.ipam_type} returned no addresses")
    result = Result(ips=ipam.ips, routes=ipam.routes, dns=ipam.dns)
    routes.complete(result)
    veth_attachment.enable_forwarding(routes.families(result), "Could not enable IP forwarding")
    outer, inner = host.create_pair(host_h, cont, req.ifname, conf.mtu)
    undo.push(f"delete {req.ifname}", lambda: link.delete_link(cont, inner.index))
    result.interfaces = [Interface(name=outer.name, mac=outer.mac),
                         Interface(name=inner.name, mac=inner.mac, sandbox=req.netns)]
    container.configure(cont, req.netns, inner, result.ips, result.routes)
    host.configure_host_end(host_h, outer, result.ips)
    if conf.ip_masq:
        veth_attachment.masquerade(req, conf.ip_masq_backend, result.ips, undo)
    if conf.dns is not None:
        result.dns = DNS.from_json(conf.dns)
    return result
