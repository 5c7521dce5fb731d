"""portmap: forward host ports to the container (a pod's hostPort), chained after the plugin that
gave it its addresses.

    config.py  the config and the container's addresses from prevResult (pure)
    plan.py    the reference's rule layouts on iptables and nftables (pure; their names and
               how they are read back: cni.layout.portmap)
    steps.py   the kernel: rules through cni.net.firewall, UDP conntrack
    localnet.py  route_localnet on the pod's own host interface, undone by the last DEL

DEL finds the rules without runtimeConfig: the iptables chain is named after (network, container
ID), the nft rules carry the container ID and the network's marker the attachment's address, so DEL
removes what any ADD made, in both backends, and no other attachment's; and it flushes the UDP
conntrack entries of the ports those rules forwarded.
"""

from __future__ import annotations

from cni.contract.errors import INTERNAL, INVALID_CONFIG, NOT_AVAILABLE, CNIError, failed
from cni.contract.versions import SUPPORTED

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cni.contract.request import Request
    from cni.contract.result import Result

    from .config import PortMapConf

TYPE = "portmap"
SCHEMA = "portmap"
CNI_ARGS_KEYS = None  # the reference plugin does not read CNI_ARGS
NEEDS_NETNS = True
READS_PREV_RESULT = True
IPAM = False
VERSIONS = SUPPORTED  # as the reference v1.9.1 (a 0.1.0/0.2.0 prevResult has ip4/ip6 only)


def _conf(req: Request) -> PortMapConf:
    from cni.net.firewall.tools import default_backend

    from . import config

    return config.load(req.config, default_backend())


def prev_result_as_text(command: str, config: dict) -> bool:
    """Without port mappings ADD and CHECK only pass prevResult on, and DEL never reads its
    addresses: then they may stay text when canonical, and the call needs no `ipaddress`."""
    return command == "DEL" or not (config.get("runtimeConfig") or {}).get("portMappings")


def add(req: Request) -> Result:
    conf = _conf(req)
    if req.prev_result is None:
        raise CNIError(INVALID_CONFIG, "must be called as chained plugin",
                       "portmap forwards to the addresses of the plugin before it in the list (prevResult)")
    if not conf.mappings:
        return req.prev_result
    from cni.net.firewall.tools import FirewallError

    from . import config, steps

    addresses = config.container_addresses(req.prev_result, req.ifname)
    try:
        for family, address in sorted(addresses.items()):
            steps.setup(conf, req.container_id, req.ifname, family, address)
            steps.flush_udp({family: {m.host_port for m in conf.mappings
                                      if m.protocol == "udp" and m.applies_to(family)}})
            if family == 4 and conf.snat:
                from . import localnet

                localnet.enable(address.ip, config.host_interfaces(req.prev_result),  # type: ignore[attr-defined]
                                _attachment(req))
    except (FirewallError, OSError) as e:
        _undo(req)
        from cni.flock import LockTimeout  # loaded already when a lock was taken; not on every call

        localnet_failed = isinstance(e, OSError) and not isinstance(e, LockTimeout)
        what = "unable to enable route_localnet" if localnet_failed else "unable to set up hostports"
        raise failed(e, f"{what}: ") from None
    except BaseException:
        _undo(req)
        raise
    return req.prev_result


def _configured_backend(req: Request) -> str | None:
    """The backend the config names, read without validating the rest (DEL must work on any config)."""
    backend = req.config.get("backend")
    return backend if isinstance(backend, str) else None


def _attachment(req: Request) -> str:
    from cni.layout.portmap import attachment_key

    return attachment_key(req.name, req.container_id, req.ifname)


def _release_localnet(req: Request) -> None:
    """This attachment no longer needs route_localnet (turned off if it was the last, and ours)."""
    from . import localnet

    mine = _attachment(req)
    localnet.release(lambda key: key != mine)


def _undo(req: Request) -> None:
    """Remove what a failed ADD installed: nothing half-done stays."""
    from cni.net.firewall.tools import FirewallError

    from . import steps

    try:
        steps.teardown(req.name, req.container_id, req.ifname, _configured_backend(req))
        _release_localnet(req)
    except (FirewallError, OSError) as e:
        import sys

        sys.stderr.write(f"portmap: could not undo a failed ADD: {e}\n")


def delete(req: Request) -> None:
    """Remove this attachment's rules from both backends, with or without runtimeConfig, and the
    UDP conntrack entries of the ports they forwarded (the reference's DEL flushes none).

    An attachment without rules (every pod without a hostPort) costs one netlink question per
    table instead of reading the tables with the tools (`steps._may_hold`)."""
    from cni.net.firewall.tools import FirewallError

    from . import steps

    try:
        ports = steps.teardown(req.name, req.container_id, req.ifname, _configured_backend(req))
        _release_localnet(req)
    except FirewallError as e:
        raise failed(e, "could not remove hostports: ") from None
    except OSError as e:
        raise failed(e, "could not restore route_localnet: ") from None
    for m in _mappings_if_readable(req):
        if m.protocol == "udp":
            for family in (4, 6):
                if m.applies_to(family):
                    ports[family].add(m.host_port)
    steps.flush_udp(ports)


def _mappings_if_readable(req: Request) -> list:
    """runtimeConfig's mappings, or none when they do not parse (DEL must not depend on them)."""
    try:
        return _conf(req).mappings
    except CNIError:
        return []


def check(req: Request) -> None:
    conf = _conf(req)
    if req.prev_result is None:
        raise CNIError(INVALID_CONFIG, "required prevResult missing",
                       "CHECK compares the rules with the addresses of prevResult")
    if not conf.mappings:
        return
    from cni.net.firewall.tools import FirewallError

    from . import config, steps

    missing = []
    try:
        for family, address in sorted(config.container_addresses(req.prev_result, req.ifname).items()):
            missing += [f"IPv{family}: {m}" for m in steps.check(conf, req.container_id, family, address)]
    except FirewallError as e:
        raise failed(e, "could not read hostport rules: ") from None
    if missing:
        raise CNIError(INTERNAL, f"hostport rules of {req.name}/{req.container_id} are missing",
                       "; ".join(missing))


def status(req: Request) -> None:
    """Ready when the configured (or default) backend's tools are installed."""
    from . import steps

    conf = _conf(req)
    if not steps.usable(conf.backend):
        tools = "nft" if conf.backend == "nftables" else "iptables-save and iptables-restore"
        raise CNIError(NOT_AVAILABLE, f"portmap: the {conf.backend} backend is not usable",
                       f"{tools} not found on PATH, /usr/sbin or /sbin")


def gc(req: Request) -> None:
    """Remove the rules of this network's attachments that are not in the valid list."""
    from cni.layout.portmap import attachment_key, network_key
    from cni.net.firewall.tools import FirewallError

    from . import localnet, steps

    valid = set(req.valid_attachments())
    keep = {attachment_key(req.name, cid, ifname) for cid, ifname in valid}
    lead = network_key(req.name) + "-"
    try:
        steps.gc(req.name, valid)
        localnet.release(lambda key: key in keep or not key.startswith(lead))
    except FirewallError as e:
        raise failed(e, "could not collect hostports: ") from None
    except OSError as e:
        raise failed(e, "could not restore route_localnet: ") from None
