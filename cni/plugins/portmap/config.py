"""The portmap config: defaults, the checks the schema cannot express, the container's addresses.

Pure functions over the schema-checked stdin config (keys already in the schema's spelling, so
containerd's `HostPort` arrives as `hostPort`) and prevResult; nothing here touches the kernel.
Every refusal is code 7 and names the key.
"""

from __future__ import annotations

from cni.contract.errors import INVALID_CONFIG, CNIError
from cni.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cni.contract.result import Result

DEFAULT_MARK_BIT = 13  # Kubernetes uses 14 and 15, Calico 20-31
PROTOCOLS = ("tcp", "udp", "sctp")


class Mapping(Record):
    """One hostPort: `host_ip` is "" for every local address (also for 0.0.0.0 and ::)."""

    __slots__ = ("host_port", "container_port", "protocol", "host_ip", "host_ip_version", "group")
    _defaults = {"group": ""}
    if TYPE_CHECKING:
        host_port: int
        container_port: int
        protocol: str  # lower case
        host_ip: str
        host_ip_version: int  # 0: no hostIP given, else 4 or 6 (also for 0.0.0.0 and ::)
        group: str  # the protocol as written ("" for the default): the reference groups ports by it

    def applies_to(self, family: int) -> bool:
        """A hostIP of the other family leaves the mapping out of this family's rules."""
        return self.host_ip_version in (0, family)


class PortMapConf(Record):
    """Everything ADD, DEL, CHECK and GC need, with the reference's defaults."""

    __slots__ = ("name", "backend", "snat", "masq_all", "mark_bit", "external_mark_chain",
                 "conditions", "mappings")
    if TYPE_CHECKING:
        name: str
        backend: str  # "iptables" or "nftables"
        snat: bool
        masq_all: bool
        mark_bit: int
        external_mark_chain: str | None
        conditions: dict[int, list[str]]  # family -> extra matches
        mappings: list[Mapping]


def _fail(msg: str, details: str = "") -> CNIError:
    return CNIError(INVALID_CONFIG, msg, details)


def conditions_backend(conditions: list[str] | None) -> str | None:
    """Which backend a conditions list is written for: iptables arguments start with - or !."""
    if not conditions or not conditions[0]:
        return None
    return "iptables" if conditions[0][0] in "-!" else "nftables"


def _refuse_injection(words: list[str], key: str, backend: str) -> None:
    """Conditions go into a tool's batch text: a line break there (or, for nft, a `;` or `#`)
    would start another command or hide the rest of the rule."""
    banned = "\n\r\0" + (";#" if backend == "nftables" else "")
    for i, word in enumerate(words):
        if any(c in banned for c in word):
            raise _fail(f"invalid value for {key}[{i}]: {word!r}",
                        f"{key} entries must not contain line breaks, NUL"
                        + (", ';' or '#'" if backend == "nftables" else ""))


def parse_mapping(raw: dict, where: str) -> Mapping:
    """One schema-checked portMappings entry; code 7 for a protocol or hostIP that cannot work."""
    protocol = (raw.get("protocol") or "tcp").lower()
    if protocol not in PROTOCOLS:
        raise _fail(f"invalid value for {where}.protocol: {raw.get('protocol')!r}",
                    f"{where}.protocol must be one of {', '.join(PROTOCOLS)}")
    host_ip = raw.get("hostIP") or ""
    version = 0
    if host_ip:
        import ipaddress

        try:
            if "%" in host_ip:  # Python takes a zone (fe80::1%eth0); iptables and nft do not
                raise ValueError(host_ip)
            address = ipaddress.ip_address(host_ip)
        except ValueError:
            raise _fail(f"invalid value for {where}.hostIP: {host_ip!r}",
                        f"{where}.hostIP must be an IPv4 or IPv6 address (no prefix, no zone)") from None
        version = address.version
        host_ip = "" if address.is_unspecified else str(address)
    return Mapping(host_port=raw["hostPort"], container_port=raw["containerPort"], protocol=protocol,
                   host_ip=host_ip, host_ip_version=version, group=raw.get("protocol") or protocol)


def load(config: dict, default_backend: str) -> PortMapConf:
    """The PortMapConf of a schema-checked config; code 7 for combinations that cannot work.

    `default_backend` is the host's choice when the config names none (the reference's rule:
    iptables unless only nft is installed); options of the other backend are refused.
    """
    backend = config.get("backend") or default_backend
    mark_bit = config.get("markMasqBit")
    external = config.get("externalSetMarkChain")
    if mark_bit is not None and external is not None:
        raise _fail("cannot specify externalSetMarkChain and markMasqBit",
                    "externalSetMarkChain marks packets with a chain of its own; drop one of the keys")
    conditions = {4: config.get("conditionsV4") or [], 6: config.get("conditionsV6") or []}
    wrong = [key for key, family in (("conditionsV4", 4), ("conditionsV6", 6))
             if conditions_backend(conditions[family]) not in (None, backend)]
    if external is not None and backend != "iptables":
        wrong.insert(0, "externalSetMarkChain")
    for family, key in ((4, "conditionsV4"), (6, "conditionsV6")):
        _refuse_injection(conditions[family], key, backend)
    if wrong:
        other = "nftables" if backend == "iptables" else "iptables"
        raise _fail(f"{backend} backend was requested but configuration contains {other}-specific "
                    f"options {wrong}",
                    "iptables conditions start with '-' or '!', nft expressions do not; "
                    "externalSetMarkChain is iptables-only")
    raw_maps = (config.get("runtimeConfig") or {}).get("portMappings") or []
    mappings = [parse_mapping(m, f"runtimeConfig.portMappings[{i}]") for i, m in enumerate(raw_maps)]
    return PortMapConf(
        name=config["name"],
        backend=backend,
        snat=config.get("snat") is not False,
        masq_all=bool(config.get("masqAll")),
        mark_bit=DEFAULT_MARK_BIT if mark_bit is None else mark_bit,
        external_mark_chain=external,
        conditions=conditions,
        mappings=mappings,
    )


def container_addresses(prev: Result, ifname: str) -> dict[int, object]:
    """family -> the first address (an ip_interface) of prevResult on `ifname` in the sandbox.

    As the reference: an address whose interface index names another interface, or one outside
    the sandbox, is skipped; one without an index counts.
    """
    out: dict[int, object] = {}
    for ip in prev.ips:
        if ip.version in out:
            continue
        index = ip.interface
        if index is not None and 0 <= index < len(prev.interfaces):
            iface = prev.interfaces[index]
            if iface.name != ifname or not iface.sandbox:
                continue
        out[ip.version] = ip.address
    return out


def host_interfaces(prev: Result) -> set[str] | None:
    """The names of the host-side interfaces prevResult reports (the bridge, a host veth); None
    when it reports no interfaces at all (a 0.2.0 result)."""
    if not prev.interfaces:
        return None
    return {iface.name for iface in prev.interfaces if not iface.sandbox}
