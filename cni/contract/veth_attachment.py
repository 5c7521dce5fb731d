"""The steps every plugin whose container end is a veth pair takes (bridge, ptp), written once.

An ADD run under an undo stack with both namespaces' handles open, the container end's addresses
and link state, ipMasq over `cni.net.firewall.masq`, the container end's removal on DEL, GC of
the masquerade rules, and the config's `dns` override: the same messages, codes and kernel
effects for both plugins. The kernel's and the firewall's failures become CNI errors here.

Only `errors` is imported with this module; the rest is imported by the step that needs it (the
firewall pulls in subprocess, json and hashlib, which an attachment without ipMasq does not need).
"""

from __future__ import annotations

from .errors import CNIError, attempt, failed
from .errors import internal as fail

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from cni.net.link import Link
    from cni.net.netlink import Handle
    from cni.undo import Undo

    from .request import Request
    from .result import IPConfig, Result


def add_undoable(plugin: str, netns_path: str, step: Callable[[Handle, Handle, Undo], Result]) -> Result:
    """Run `step(host, container, undo)`; on any failure undo what it made, in reverse, while the
    handles are still open (the undo steps use them)."""
    from cni.net import netns
    from cni.net.netlink import Handle
    from cni.undo import Undo

    undo = Undo(plugin)
    with Handle() as host, netns.open_handle(netns_path) as cont:
        try:
            return step(host, cont, undo)
        except BaseException:
            undo.run()
            raise


def address_and_up(cont: Handle, dev: Link, ips: list[IPConfig]) -> None:
    """Put each address on the container end, then set it up."""
    from cni.net import addr, link

    for ip in ips:
        try:
            addr.add_address(cont, dev.index, ip.address)
        except OSError as e:
            raise fail(f'failed to add IP addr {ip.address} to "{dev.name}": {e}', e) from None
    try:
        link.set_link(cont, dev.index, up=True)
    except OSError as e:
        raise fail(f'failed to set "{dev.name}" UP: {e}', e) from None


def remove_container_end(netns_path: str, ifname: str) -> None:
    """DEL's removal of the container end (the host end goes with it); nothing to do is no error."""
    from cni.net import veth

    try:
        veth.delete_container_end(netns_path, ifname)
    except OSError as e:
        raise fail(f"failed to delete {ifname} in {netns_path}: {e}", e) from None


def enable_forwarding(families: list[int] | tuple[int, ...], what: str) -> None:
    """ip_forward / conf.all.forwarding on for each IP version; `what` begins the message of a failure."""
    from cni.net import sysctl

    for version in families:
        key = "net/ipv4/ip_forward" if version == 4 else "net/ipv6/conf/all/forwarding"
        try:
            if sysctl.read(key) != "1":
                sysctl.write(key, "1")
        except OSError as e:
            raise fail(f"{what}: {e}", e) from None


def masquerade(req: Request, backend: str | None, ips: list[IPConfig], undo: Undo) -> None:
    """ADD's ipMasq step: the rules for the attachment's addresses, removed again if ADD fails later."""
    undo.push("remove masquerade rules",
              lambda: teardown_masq(req.name, req.ifname, req.container_id, backend))
    setup_masq(backend, [ip.address for ip in ips], req.name, req.ifname, req.container_id)


def setup_masq(backend: str | None, ips: list, network: str, ifname: str, container_id: str) -> None:
    from cni.net.firewall import masq
    from cni.net.firewall.tools import FirewallError

    try:
        masq.setup(backend, ips, network, ifname, container_id)
    except FirewallError as e:
        raise failed(e) from None


def teardown_masq(network: str, ifname: str, container_id: str, backend: str | None = None) -> None:
    """Remove the attachment's masquerade rules from both backends (only `backend`'s failure counts)."""
    from cni.net.firewall import masq
    from cni.net.firewall.tools import FirewallError

    try:
        masq.teardown(network, ifname, container_id, backend)
    except FirewallError as e:
        raise failed(e, "failed to remove masquerade rules: ") from None


def gc_masq(network: str, valid: set[tuple[str, str]]) -> None:
    from cni.net.firewall import masq
    from cni.net.firewall.tools import FirewallError

    try:
        masq.gc(network, valid)
    except FirewallError as e:
        raise failed(e, "failed to collect masquerade rules: ") from None


def gc(req: Request) -> None:
    """GC: remove masquerade rules of attachments not in the valid list, then let IPAM collect.

    Both steps run; one failure is reported as it is, two as the first with both in its details.
    """
    from . import delegate

    errors: list[CNIError] = []
    attempt(errors, gc_masq, req.name, req.valid_attachments())
    if (req.config.get("ipam") or {}).get("type"):
        attempt(errors, delegate.ipam, req, "GC")
    if errors:
        raise errors[0] if len(errors) == 1 else CNIError(
            errors[0].code, errors[0].msg, "; ".join(str(e) for e in errors))


def dns_override(config: dict[str, object]) -> dict[str, object] | None:
    """The config's `dns` when any part of it is set (it then replaces IPAM's), else None."""
    dns = config.get("dns")
    if not isinstance(dns, dict):
        return None
    if any(dns.get(k) is not None for k in ("nameservers", "search", "options")) or dns.get("domain"):
        return dns
    return None
