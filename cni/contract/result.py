"""CNI results: one internal model in the newest form, printed in any spec version.

Every plugin builds a `Result`; `to_json(version)` converts it for the caller and
`Result.from_json` reads a `prevResult` or an IPAM delegate's answer of any version.
"""

from __future__ import annotations

from cni import addrtext
from cni.record import Record

from . import gojson
from .errors import DECODING_FAILURE, INCOMPATIBLE_VERSION, INVALID_CONFIG, CNIError
from .versions import parse as parse_version

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    # `ipaddress` is imported where a result is parsed, not here: a plugin that only prints the
    # result it builds (loopback, with `cni.addrtext.Cidr` addresses) never loads it.
    from cni.addrtext import IPAddress, IPInterface, IPNetwork


class Interface(Record):
    """An interface a plugin created or configured; sandbox is the netns path for container ones."""

    __slots__ = ("name", "mac", "sandbox", "mtu", "socket_path", "pci_id")
    _defaults = {"mac": "", "sandbox": "", "mtu": None, "socket_path": "", "pci_id": ""}
    if TYPE_CHECKING:
        name: str
        mac: str
        sandbox: str
        mtu: int | None
        socket_path: str
        pci_id: str


class IPConfig(Record):
    """An address with its prefix, its gateway and the index of the interface it sits on."""

    __slots__ = ("address", "gateway", "interface")
    _defaults = {"gateway": None, "interface": None}
    if TYPE_CHECKING:
        address: IPInterface
        gateway: IPAddress | None
        interface: int | None

    @property
    def version(self) -> int:
        return self.address.version


class Route(Record):
    """A route to install in the container; the 1.1.0 fields are dropped for older versions."""

    __slots__ = ("dst", "gw", "mtu", "advmss", "priority", "table", "scope")
    _defaults = {"gw": None, "mtu": None, "advmss": None, "priority": None, "table": None, "scope": None}
    if TYPE_CHECKING:
        dst: IPNetwork
        gw: IPAddress | None
        mtu: int | None
        advmss: int | None
        priority: int | None
        table: int | None
        scope: int | None


class DNS(Record):
    """Resolver settings for the container."""

    __slots__ = ("nameservers", "domain", "search", "options")
    _defaults = {"nameservers": list, "domain": "", "search": list, "options": list}
    if TYPE_CHECKING:
        nameservers: list[str]
        domain: str
        search: list[str]
        options: list[str]

    def is_empty(self) -> bool:
        return not (self.nameservers or self.domain or self.search or self.options)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.nameservers:
            out["nameservers"] = list(self.nameservers)
        if self.domain:
            out["domain"] = self.domain
        if self.search:
            out["search"] = list(self.search)
        if self.options:
            out["options"] = list(self.options)
        return out

    @classmethod
    def from_json(cls, raw: Any) -> DNS:
        if raw is None:
            return cls()
        if not isinstance(raw, dict):
            raise CNIError(DECODING_FAILURE, f"invalid dns {raw!r}: not an object")
        return cls(
            nameservers=_str_list(raw.get("nameservers"), "dns.nameservers"),
            domain=_str(raw.get("domain"), "dns.domain"),
            search=_str_list(raw.get("search"), "dns.search"),
            options=_str_list(raw.get("options"), "dns.options"),
        )


class Result(Record):
    """The newest (1.1.0) result form."""

    __slots__ = ("interfaces", "ips", "routes", "dns")
    _defaults = {"interfaces": list, "ips": list, "routes": list, "dns": DNS}
    if TYPE_CHECKING:
        interfaces: list[Interface]
        ips: list[IPConfig]
        routes: list[Route]
        dns: DNS

    # ---- printing -------------------------------------------------------------------------
    def to_json(self, version: str) -> dict[str, Any]:
        """The result as the given spec version prints it."""
        v = parse_version(version)
        if v < (0, 3, 0):
            return self._to_020(version)
        legacy = v < (1, 0, 0)
        newest = v >= (1, 1, 0)
        out: dict[str, Any] = {"cniVersion": version}
        if self.interfaces:
            out["interfaces"] = [_interface_json(i, newest) for i in self.interfaces]
        if self.ips:
            out["ips"] = [_ip_json(ip, legacy) for ip in self.ips]
        if self.routes:
            out["routes"] = [_route_json(r, newest) for r in self.routes]
        if legacy or not self.dns.is_empty():
            out["dns"] = self.dns.to_json()
        return out

    def _to_020(self, version: str) -> dict[str, Any]:
        out: dict[str, Any] = {"cniVersion": version}
        for family, key in ((4, "ip4"), (6, "ip6")):
            # As libcni converts: the first address of each family is kept. IPAM refuses to hand
            # out a second one per family to a 0.1.0/0.2.0 config in the first place.
            ips = [ip for ip in self.ips if ip.version == family][:1]
            if not ips:
                continue
            entry: dict[str, Any] = {"ip": str(ips[0].address)}
            if ips[0].gateway is not None:
                entry["gateway"] = str(ips[0].gateway)
            routes = [_route_json(r, False) for r in self.routes if r.dst.version == family]
            if routes:
                entry["routes"] = routes
            out[key] = entry
        if "ip4" not in out and "ip6" not in out:
            raise CNIError(INCOMPATIBLE_VERSION,
                           f"cannot convert to CNI version {version}: the result has no IP addresses")
        out["dns"] = self.dns.to_json()
        return out

    # ---- parsing --------------------------------------------------------------------------
    @classmethod
    def from_json(cls, raw: Any, version: str, text_addresses: bool = False) -> Result:
        """Read a result of any version; `version` applies when the result names none.

        `text_addresses`: addresses already in canonical text become `cni.addrtext` values,
        printed the same, without importing `ipaddress`; any other text is parsed by
        `ipaddress` as always. For a plugin that passes the result on (bandwidth) or reads only
        what both kinds answer (the bridge reading its IPAM's answer).
        """
        if not isinstance(raw, dict):
            raise CNIError(DECODING_FAILURE, "failed to parse result: not a JSON object")
        declared = raw.get("cniVersion") or version
        if not isinstance(declared, str):
            raise _fail("cniVersion", declared, "not a string")
        if parse_version(declared) < (0, 3, 0):
            return cls._from_020(raw, text_addresses)
        interfaces = [_interface_from(i, n) for n, i in enumerate(_list(raw.get("interfaces"), "interfaces"))]
        ips = [_ip_from(i, n, text_addresses) for n, i in enumerate(_list(raw.get("ips"), "ips"))]
        routes = [_route_from(r, n, text_addresses) for n, r in enumerate(_list(raw.get("routes"), "routes"))]
        return _same_families(cls(interfaces=interfaces, ips=ips, routes=routes,
                                  dns=DNS.from_json(raw.get("dns"))))

    @classmethod
    def _from_020(cls, raw: dict[str, Any], text_addresses: bool) -> Result:
        result = cls(dns=DNS.from_json(raw.get("dns")))
        for key in ("ip4", "ip6"):
            entry = raw.get(key)
            if entry is None:
                continue
            if not isinstance(entry, dict):
                raise CNIError(DECODING_FAILURE, f"failed to parse result: {key} is not an object")
            result.ips.append(IPConfig(
                address=_interface_addr(entry.get("ip"), f"{key}.ip", text_addresses),
                gateway=_opt_addr(entry.get("gateway"), f"{key}.gateway", text_addresses),
            ))
            routes = _list(entry.get("routes"), f"{key}.routes")
            result.routes.extend(_route_from(r, n, text_addresses) for n, r in enumerate(routes))
        return _same_families(result)


# ---- helpers ------------------------------------------------------------------------------
# Two answers a plugin gives as its `prev_result_as_text` (cni/contract/plugin.py). Canonical
# text stays text (`cni.addrtext`), anything else is still parsed and refused as before: the
# call only skips building `ipaddress` objects (and, on the cold path, importing `ipaddress`).
def text_always(command: str, config: dict[str, Any]) -> bool:
    """The plugin only passes prevResult on and never reads its addresses (loopback, bandwidth)."""
    return True


def text_on_delete(command: str, config: dict[str, Any]) -> bool:
    """DEL never reads prevResult's addresses; ADD and CHECK do (bridge, ptp: their DEL removes
    the container's interface by name, as the reference's, which never parses prevResult there)."""
    return command == "DEL"


def _same_families(result: Result) -> Result:
    """result, when each gateway is of its address's family and each route's gw of its dst's
    (code 7 otherwise): a gateway of the other family would be put on a bridge or routed through
    as if it belonged to the address, so nothing may be made from such a result."""
    for n, ip in enumerate(result.ips):
        if ip.gateway is not None and ip.gateway.version != ip.address.version:
            raise CNIError(INVALID_CONFIG, f"invalid result: ips[{n}] has gateway {ip.gateway} of "
                           f"another family than its address {ip.address}")
    for n, r in enumerate(result.routes):
        if r.gw is not None and r.gw.version != r.dst.version:
            raise CNIError(INVALID_CONFIG, f"invalid result: routes[{n}] to {r.dst} has gw {r.gw} of "
                           "another family")
    return result


def _interface_json(i: Interface, newest: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": i.name}
    if i.mac:
        out["mac"] = i.mac
    if newest and i.mtu:
        out["mtu"] = i.mtu
    if i.sandbox:
        out["sandbox"] = i.sandbox
    if newest and i.socket_path:
        out["socketPath"] = i.socket_path
    if newest and i.pci_id:
        out["pciID"] = i.pci_id
    return out


def _ip_json(ip: IPConfig, legacy: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if legacy:
        out["version"] = str(ip.version)
    if ip.interface is not None:
        out["interface"] = ip.interface
    out["address"] = str(ip.address)
    if ip.gateway is not None:
        out["gateway"] = str(ip.gateway)
    return out


def _route_json(r: Route, newest: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"dst": str(r.dst)}
    if r.gw is not None:
        out["gw"] = str(r.gw)
    if newest:
        for key in ("mtu", "advmss", "priority", "table", "scope"):
            value = getattr(r, key)
            if value is not None:
                out[key] = value
    return out


def _fail(what: str, value: Any, why: str) -> CNIError:
    return CNIError(DECODING_FAILURE, f"failed to parse result: {what} {value!r}: {why}")


_NOT_A = {"array": "not a list", "string": "not a string", "integer": "not an integer"}


def _type_fail(what: str, name: str, value: Any) -> CNIError:
    return _fail(what, value, _NOT_A[name])


def _list(raw: Any, what: str) -> list[Any]:
    return gojson.read(raw, "array", what, _type_fail)


def _str(raw: Any, what: str) -> str:
    return gojson.read(raw, "string", what, _type_fail)


def _str_list(raw: Any, what: str) -> list[str]:
    return [_str(x, what) for x in _list(raw, what)]


def _opt_int(raw: Any, what: str) -> int | None:
    return gojson.read(raw, "integer", what, _type_fail)


def _interface_addr(raw: Any, what: str, text: bool) -> IPInterface:
    if not isinstance(raw, str) or "/" not in raw:
        raise _fail(what, raw, "not an address with a prefix length")
    if text and (cidr := addrtext.parse_cidr(raw)) is not None:
        return cidr
    import ipaddress

    try:
        return ipaddress.ip_interface(raw)
    except ValueError as e:
        raise _fail(what, raw, str(e)) from None


def _opt_addr(raw: Any, what: str, text: bool) -> IPAddress | None:
    if raw is None or raw == "":
        return None
    if text and isinstance(raw, str) and (ip := addrtext.parse_ip(raw)) is not None:
        return ip
    import ipaddress

    try:
        return ipaddress.ip_address(raw)
    except ValueError:
        raise _fail(what, raw, "not an IP address") from None


def _interface_from(raw: Any, n: int) -> Interface:
    if not isinstance(raw, dict):
        raise _fail(f"interfaces[{n}]", raw, "not an object")
    return Interface(
        name=_str(raw.get("name"), f"interfaces[{n}].name"),
        mac=_str(raw.get("mac"), f"interfaces[{n}].mac"),
        sandbox=_str(raw.get("sandbox"), f"interfaces[{n}].sandbox"),
        mtu=_opt_int(raw.get("mtu"), f"interfaces[{n}].mtu"),
        socket_path=_str(raw.get("socketPath"), f"interfaces[{n}].socketPath"),
        pci_id=_str(raw.get("pciID"), f"interfaces[{n}].pciID"),
    )


def _ip_from(raw: Any, n: int, text: bool) -> IPConfig:
    if not isinstance(raw, dict):
        raise _fail(f"ips[{n}]", raw, "not an object")
    return IPConfig(
        address=_interface_addr(raw.get("address"), f"ips[{n}].address", text),
        gateway=_opt_addr(raw.get("gateway"), f"ips[{n}].gateway", text),
        interface=_opt_int(raw.get("interface"), f"ips[{n}].interface"),
    )


# netlink widths of the route attributes (RTA_PRIORITY, RTA_TABLE, RTAX_MTU, RTAX_ADVMSS: 32 bits;
# rtm_scope: 8 bits): a larger value cannot be put in the message that would make the route.
ROUTE_INT_MAX = {"mtu": 0xFFFFFFFF, "advmss": 0xFFFFFFFF, "priority": 0xFFFFFFFF, "table": 0xFFFFFFFF,
                 "scope": 0xFF}


def _route_int(raw: Any, key: str, n: int) -> int | None:
    number = _opt_int(raw.get(key), f"routes[{n}].{key}")
    if number is not None and not 0 <= number <= ROUTE_INT_MAX[key]:
        raise _fail(f"routes[{n}].{key}", number, f"out of range 0 to {ROUTE_INT_MAX[key]}")
    return number


def _route_from(raw: Any, n: int, text: bool) -> Route:
    if not isinstance(raw, dict):
        raise _fail(f"routes[{n}]", raw, "not an object")
    dst = raw.get("dst")
    network: IPNetwork | None = addrtext.parse_network(dst) if text and isinstance(dst, str) else None
    if network is None and isinstance(dst, str):
        import ipaddress

        try:
            network = ipaddress.ip_network(dst, strict=False)
        except ValueError:
            network = None
    if network is None:
        raise _fail(f"routes[{n}].dst", dst, "not a network")
    return Route(
        dst=network,
        gw=_opt_addr(raw.get("gw"), f"routes[{n}].gw", text),
        mtu=_route_int(raw, "mtu", n),
        advmss=_route_int(raw, "advmss", n),
        priority=_route_int(raw, "priority", n),
        table=_route_int(raw, "table", n),
        scope=_route_int(raw, "scope", n),
    )
