"""bridge: attach the container to a host bridge through a veth pair and give it its addresses.

ADD, in order: the bridge (created if missing, serialised per bridge name), the veth pair with
the container end named CNI_IFNAME, the host end's port flags and VLANs, the MAC spoof check,
IPAM, the container's sysctls, addresses and routes, the gateway address on the bridge, IP
forwarding, masquerading, and finally the wait for the port to come up. Anything failing after
IPAM ran releases the address and undoes what this ADD made (the bridge stays).
"""

from __future__ import annotations

import sys

from cni.contract import delegate
from cni.contract.errors import INTERNAL, CNIError
from cni.contract.request import Request
from cni.contract.result import DNS, Interface, Result
from cni.net import link, netns
from cni.net.netlink import Handle

from . import bridge_config, bridge_gateways
from .bridge_links import (
    attach_port,
    bridge_lock,
    configure_container,
    create_veth,
    enable_forwarding,
    ensure_address,
    ensure_bridge,
    ensure_vlan_gateway,
    fail,
    freeze_mac,
    wait_port_up,
)

TYPE_CHECKING = False  # typing costs start-up time; annotations are strings here
if TYPE_CHECKING:
    from collections.abc import Callable

TYPE = "bridge"
SCHEMA = "bridge"
CNI_ARGS_KEYS = frozenset({"MAC"})
NEEDS_NETNS = True


def _fw():
    """The firewall package, imported only by attachments that use ipMasq or macspoofchk: it pulls
    in subprocess, json and hashlib, which a plain ADD does not need."""
    from cni.net.firewall import masq, spoofcheck, tools

    return _Firewall(masq, spoofcheck, tools.FirewallError)


class _Firewall:
    __slots__ = ("FirewallError", "masq", "spoofcheck")

    def __init__(self, masq, spoofcheck, error) -> None:
        self.masq, self.spoofcheck, self.FirewallError = masq, spoofcheck, error


class _Undo:
    """What ADD made so far, undone in reverse order if a later step fails."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, Callable[[], object]]] = []

    def push(self, what: str, step: Callable[[], object]) -> None:
        self.steps.append((what, step))

    def run(self) -> None:
        for what, step in reversed(self.steps):
            try:
                step()
            except Exception as e:  # keep undoing; the original error is what gets reported
                sys.stderr.write(f"bridge: cleanup after failed ADD: {what}: {e}\n")


def add(req: Request) -> Result:
    conf = bridge_config.load(req.config, req.args)
    if conf.layer3:
        delegate.find(conf.ipam_type, req.path)  # a missing IPAM plugin fails before anything is made
    undo = _Undo()
    with Handle() as host, netns.open_handle(req.netns) as cont:
        try:
            return _add(req, conf, host, cont, undo)
        except BaseException:
            undo.run()  # while the handles are open: the undo steps use them
            raise


def _add(req: Request, conf: bridge_config.BridgeConf, host: Handle, cont: Handle, undo: _Undo) -> Result:
    with bridge_lock(conf.bridge):
        br = ensure_bridge(host, conf)

    outer, inner = create_veth(host, cont, req.ifname, conf.mtu, conf.mac)
    undo.push(f"delete {req.ifname}", lambda: link.delete_link(cont, inner.index))
    attach_port(host, outer, br, conf, conf.vlan, conf.vlans)

    if conf.macspoofchk:
        _firewall(lambda: _fw().spoofcheck.setup(outer.name, inner.mac, req.container_id, req.ifname))
        undo.push("remove spoof check",
                  lambda: _fw().spoofcheck.teardown(req.container_id, req.ifname))

    result = Result(interfaces=[
        Interface(name=br.name),
        Interface(name=outer.name),
        Interface(name=inner.name, mac=inner.mac, sandbox=req.netns, mtu=inner.mtu),
    ])

    if conf.layer3:
        ipam = delegate.ipam(req, "ADD")
        undo.push("release the address (IPAM DEL)", lambda: delegate.ipam(req, "DEL"))
        if ipam is None or not ipam.ips:
            raise fail("IPAM plugin returned missing IP config", f"{conf.ipam_type} returned no addresses")
        result.ips, result.routes, result.dns = ipam.ips, ipam.routes, ipam.dns
        gateways = bridge_gateways.plan(result, conf.is_gateway, conf.is_default_gateway)
        configure_container(cont, req.netns, inner, result.ips, result.routes, conf.enable_dad)

        if conf.is_gateway and (gateways[4] or gateways[6]):
            target = br
            if conf.vlan:
                target = ensure_vlan_gateway(host, br, conf)
                result.interfaces.append(Interface(name=target.name, mac=target.mac))
            with bridge_lock(conf.bridge):
                for gw in gateways[4] + gateways[6]:
                    ensure_address(host, target, gw, conf.force_address)
                freeze_mac(host, target if conf.vlan else br)
            for version in (4, 6):
                if gateways[version]:
                    enable_forwarding(version)

        if conf.ip_masq:
            addresses = [ip.address for ip in result.ips]
            undo.push("remove masquerade rules",
                      lambda: _fw().masq.teardown(req.name, req.ifname, req.container_id))
            _firewall(lambda: _fw().masq.setup(conf.ip_masq_backend, addresses, req.name,
                                                  req.ifname, req.container_id))
    elif not conf.disable_container_interface:
        try:
            link.set_link(cont, inner.index, up=True)
        except OSError as e:
            raise fail(f'failed to set "{req.ifname}" up: {e}', e) from None

    if not conf.disable_container_interface:
        outer = wait_port_up(host, outer)
    else:
        outer = link.get_link(host, outer.index) or outer
    br = link.get_link(host, br.index) or br
    result.interfaces[0] = Interface(name=br.name, mac=br.mac, mtu=br.mtu)
    result.interfaces[1] = Interface(name=outer.name, mac=outer.mac, mtu=outer.mtu)
    if conf.dns is not None:
        result.dns = DNS.from_json(conf.dns)
    return result


def _firewall(step: Callable[[], None]) -> None:
    try:
        step()
    except _fw().FirewallError as e:
        raise fail(str(e)) from None


def delete(req: Request) -> None:
    """Remove the container end, release the address, remove firewall rules: every step runs even
    when an earlier one finds nothing (the namespace, the interface or prevResult gone)."""
    conf = bridge_config.load(req.config, {}, for_add=False)
    errors: list[CNIError] = []
    if req.netns:
        try:
            _delete_container_link(req.netns, req.ifname)
        except OSError as e:
            errors.append(fail(f"failed to delete {req.ifname} in {req.netns}: {e}", e))
    if conf.layer3:
        try:
            delegate.ipam(req, "DEL")
        except CNIError as e:
            errors.append(e)
    if conf.macspoofchk:
        try:
            _fw().spoofcheck.teardown(req.container_id, req.ifname)
        except _fw().FirewallError as e:
            sys.stderr.write(f"bridge: {e}\n")  # as the reference: logged, not fatal
    if conf.ip_masq:
        try:
            _fw().masq.teardown(req.name, req.ifname, req.container_id)
        except _fw().FirewallError as e:
            errors.append(fail(f"failed to remove masquerade rules: {e}"))
    if errors:
        raise errors[0]


def _delete_container_link(path: str, ifname: str) -> None:
    try:
        h = netns.open_handle(path)
    except FileNotFoundError:
        return  # the namespace is gone, and the veth pair with it
    except OSError as e:
        if e.errno == 22:  # exists but is no network namespace (e.g. an unmounted bind target)
            return
        raise
    with h:
        dev = link.get_link(h, ifname)
        if dev is not None:
            try:
                link.delete_link(h, dev.index)
            except OSError as e:
                if e.errno != 19:  # ENODEV: deleted concurrently
                    raise


def check(req: Request) -> None:
    from .bridge_check import check as run_check

    run_check(req)


def status(req: Request) -> None:
    """Ready when the IPAM plugin is (layer 2 only: always)."""
    if (req.config.get("ipam") or {}).get("type"):
        delegate.ipam(req, "STATUS")


def gc(req: Request) -> None:
    """Remove masquerade rules of attachments not in the valid list, then let IPAM collect."""
    errors: list[CNIError] = []
    try:
        _fw().masq.gc(req.name, req.valid_attachments())
    except _fw().FirewallError as e:
        errors.append(CNIError(INTERNAL, f"failed to collect masquerade rules: {e}"))
    if (req.config.get("ipam") or {}).get("type"):
        try:
            delegate.ipam(req, "GC")
        except CNIError as e:
            errors.append(e)
    if errors:
        raise errors[0] if len(errors) == 1 else CNIError(
            errors[0].code, errors[0].msg, "; ".join(str(e) for e in errors))
