"""The host-local `ipam` configuration, parsed and validated as the reference plugin does.

Pure: a function from the stdin config (a dict), the CNI_ARGS pairs and the spec version to an
`IPAMConfig`. The only file this module may need (`rangeFromFile`) is read through a callable the
caller passes in, so everything here is testable without a disk.

Keys and types are read as Go's `encoding/json` reads them, by `cni.contract.gojson` (keys match
case-insensitively, the last one wins, unknown keys are ignored).
Errors are `CNIError`s with the reference's wording (code 7 for an invalid configuration).
"""

from __future__ import annotations

import ipaddress

from cni.contract import gojson, versions
from cni.contract.errors import INVALID_CONFIG, CNIError
from cni.contract.result import DNS, Route

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

DEFAULT_DATA_DIR = "/var/lib/cni/networks"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


# ---- JSON access the way Go decodes it (cni.contract.gojson) ------------------------------------
_get = gojson.get

_EXPECTED = {"object": "an object", "array": "an array", "string": "a string", "integer": "an integer"}


def _type_error(where: str, expected: str, value: Any) -> CNIError:
    """`expected` is a JSON type name ("array") or the words for one ("an object")."""
    expected = _EXPECTED.get(expected, expected)
    return CNIError(INVALID_CONFIG, f"invalid {where}: expected {expected}, got {gojson.type_name(value)}")


def _obj(value: Any, where: str) -> dict[str, Any] | None:
    return gojson.read(value, "object", where, _type_error)


def _list(value: Any, where: str) -> list[Any]:
    return gojson.read(value, "array", where, _type_error)


def _str(value: Any, where: str) -> str:
    return gojson.read(value, "string", where, _type_error)


def _opt_int(value: Any, where: str) -> int | None:
    return gojson.read(value, "integer", where, _type_error)


# ---- addresses ---------------------------------------------------------------------------------
def parse_ip(text: str) -> IPAddress | None:
    """An address as Go's net.ParseIP reads it, in canonical form (IPv4-mapped IPv6 becomes IPv4)."""
    if not text or "%" in text or "/" in text:
        return None
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def ip_name(ip: IPAddress) -> str:
    """Go's net.IP.String() (dotted IPv4, RFC 5952 lower-case IPv6): the file name of a reservation."""
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return str(ip.ipv4_mapped)
    return str(ip)


def _parse_cidr(text: str) -> tuple[IPAddress, int, bool] | None:
    """Go's net.ParseCIDR: (address as written, prefix length, written as IPv6) or None."""
    addr_text, slash, prefix_text = text.partition("/")
    if not slash or not prefix_text.isdigit() or not prefix_text.isascii() or len(prefix_text) > 3:
        return None
    if not addr_text or "%" in addr_text:
        return None
    try:
        raw = ipaddress.ip_address(addr_text)
    except ValueError:
        return None
    prefix = int(prefix_text)
    if prefix > raw.max_prefixlen:
        return None
    written_v6 = raw.version == 6
    if written_v6 and raw.ipv4_mapped is not None:
        return raw.ipv4_mapped, prefix, True
    return raw, prefix, written_v6


def parse_requested(text: str) -> IPAddress | None:
    """A requested address, `ip` or `ip/prefix` (the prefix is ignored), or None when invalid."""
    if "/" in text:
        parsed = _parse_cidr(text)
        return parsed[0] if parsed else None
    return parse_ip(text)


def _make_ip(version: int, value: int) -> IPAddress:
    return ipaddress.IPv4Address(value) if version == 4 else ipaddress.IPv6Address(value)


# ---- ranges ------------------------------------------------------------------------------------
class Range:
    """One canonical range: a subnet, inclusive first and last addresses, and the gateway."""

    __slots__ = ("end", "first", "gateway", "gw", "last", "start", "subnet")

    def __init__(self, subnet: ipaddress.IPv4Network | ipaddress.IPv6Network, start: IPAddress,
                 end: IPAddress, gateway: IPAddress) -> None:
        self.subnet = subnet
        self.start = start
        self.end = end
        self.gateway = gateway
        # Integers for the allocator's walk; gw is None when the gateway is of the other family.
        self.first = int(start)
        self.last = int(end)
        self.gw = int(gateway) if gateway.version == subnet.version else None

    @property
    def version(self) -> int:
        return self.subnet.version

    def contains(self, ip: IPAddress) -> bool:
        """True when ip lies between start and end (both inclusive) and is of this family."""
        return ip.version == self.subnet.version and self.first <= int(ip) <= self.last

    def address(self, value: int) -> IPAddress:
        return _make_ip(self.subnet.version, value)

    def __str__(self) -> str:
        return f"{ip_name(self.start)}-{ip_name(self.end)}"

    def __repr__(self) -> str:
        return f"Range({self.subnet}, {self}, gw={self.gateway})"

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Range) and self.subnet == other.subnet and self.start == other.start
                and self.end == other.end and self.gateway == other.gateway)

    def __hash__(self) -> int:
        return hash((self.subnet, self.start, self.end, self.gateway))


RangeSet = list[Range]


def range_set_str(rs: Iterable[Range]) -> str:
    return ",".join(str(r) for r in rs)


def range_for(rs: Iterable[Range], ip: IPAddress) -> Range | None:
    """The first range of a set that contains ip."""
    for r in rs:
        if r.contains(ip):
            return r
    return None


def _overlaps(a: Range, b: Range) -> bool:
    return a.version == b.version and a.first <= b.last and b.first <= a.last


class _RawRange:
    """A range as decoded from JSON, before defaults and validation."""

    __slots__ = ("end", "gateway", "start", "subnet")

    def __init__(self, subnet: tuple[IPAddress, int, bool] | None, start: IPAddress | None,
                 end: IPAddress | None, gateway: IPAddress | None) -> None:
        self.subnet = subnet
        self.start = start
        self.end = end
        self.gateway = gateway


def _decode_ip(value: Any, where: str) -> IPAddress | None:
    text = _str(value, where)
    if text == "":
        return None
    ip = parse_ip(text)
    if ip is None:
        raise CNIError(INVALID_CONFIG, f"invalid IP address: {text}")
    return ip


def _decode_range(raw: Any, where: str) -> _RawRange:
    obj = _obj(raw, where)
    if obj is None:
        obj = {}
    subnet = None
    subnet_value = _get(obj, "subnet")
    if subnet_value is not None:
        text = _str(subnet_value, f"{where}.subnet")
        subnet = _parse_cidr(text)
        if subnet is None:
            raise CNIError(INVALID_CONFIG, f"invalid CIDR address: {text}")
    return _RawRange(
        subnet,
        _decode_ip(_get(obj, "rangeStart"), f"{where}.rangeStart"),
        _decode_ip(_get(obj, "rangeEnd"), f"{where}.rangeEnd"),
        _decode_ip(_get(obj, "gateway"), f"{where}.gateway"),
    )


def _decode_range_sets(raw: Any, where: str) -> list[list[_RawRange]]:
    sets = []
    for i, rs in enumerate(_list(raw, where)):
        items = _list(rs, f"{where}[{i}]")
        sets.append([_decode_range(r, f"{where}[{i}][{j}]") for j, r in enumerate(items)])
    return sets


class _Invalid(Exception):
    """A validation failure inside one range set; the caller names the set."""


def _canonical_range(raw: _RawRange) -> Range:
    """Defaults and validation of one range, in the reference's order and words."""
    if raw.subnet is None:
        raise _Invalid("range has no subnet")
    addr, prefix, written_v6 = raw.subnet
    bits = 128 if written_v6 else 32
    if prefix > bits - 2:
        raise _Invalid(f"Network {ip_name(addr)}/{prefix} too small to allocate from")
    if written_v6 and addr.version == 4:
        raise _Invalid("IPNet IP and Mask version mismatch")
    shift = bits - prefix
    network = ipaddress.ip_network((_make_ip(addr.version, int(addr) >> shift << shift), prefix))
    if network.network_address != addr:
        raise _Invalid(f"Network has host bits set. For a subnet mask of length {prefix} "
                       f"the network address is {ip_name(network.network_address)}")
    version = network.version
    base = int(network.network_address)
    gateway = raw.gateway if raw.gateway is not None else _make_ip(version, base + 1)

    start = raw.start
    if start is not None:
        # The reference compares the start with a given end before it checks the end.
        backwards = raw.end is not None and raw.end.version == start.version and start > raw.end
        if start.version != version or start not in network or backwards:
            raise _Invalid(f"RangeStart {ip_name(start)} not in network {network}")
    else:
        start = _make_ip(version, base + 1)

    end = raw.end
    if end is not None:
        if end.version != version or end not in network or end < start:
            raise _Invalid(f"RangeEnd {ip_name(end)} not in network {network}")
    else:
        last = int(network.broadcast_address)
        end = _make_ip(version, last - 1 if version == 4 else last)
    return Range(network, start, end, gateway)


def _canonical_set(raw_set: list[_RawRange]) -> RangeSet:
    if not raw_set:
        raise _Invalid("empty range set")
    ranges: RangeSet = []
    for raw in raw_set:
        r = _canonical_range(raw)
        if ranges and r.start.version != ranges[0].start.version:
            raise _Invalid("mixed address families")
        ranges.append(r)
    for i, r1 in enumerate(ranges):
        for r2 in ranges[i + 1:]:
            if _overlaps(r1, r2):
                raise _Invalid(f"subnets {r1} and {r2} overlap")
    return ranges


# ---- the whole configuration --------------------------------------------------------------------
class IPAMConfig:
    """Everything host-local needs for one call."""

    __slots__ = ("data_dir", "name", "ranges", "requested", "resolv_conf", "routes")

    def __init__(self, name: str, data_dir: str, ranges: list[RangeSet], routes: list[Route],
                 resolv_conf: str, requested: list[IPAddress]) -> None:
        self.name = name
        self.data_dir = data_dir
        self.ranges = ranges
        self.routes = routes
        self.resolv_conf = resolv_conf
        self.requested = requested


def _ipam(config: dict[str, Any]) -> dict[str, Any]:
    ipam = _obj(_get(config, "ipam"), "ipam")
    if ipam is None:
        raise CNIError(INVALID_CONFIG, "IPAM config missing 'ipam' key")
    return ipam


def parse_location(config: dict[str, Any]) -> tuple[str, str]:
    """(network name, data directory): all that DEL and GC need from the configuration."""
    ipam = _ipam(config)
    name = _str(_get(config, "name"), "name")
    data_dir = _str(_get(ipam, "dataDir"), "ipam.dataDir") or DEFAULT_DATA_DIR
    return name, data_dir


def _decode_requested(value: Any, where: str) -> list[IPAddress]:
    out = []
    for i, item in enumerate(_list(value, where)):
        text = _str(item, f"{where}[{i}]")
        if text == "":
            raise CNIError(INVALID_CONFIG, f"cannot understand ip: empty address in {where}")
        ip = parse_requested(text)
        if ip is None:
            raise CNIError(INVALID_CONFIG, f"invalid IP address {text}")
        out.append(ip)
    return out


def _decode_routes(value: Any) -> list[Route]:
    routes = []
    for i, raw in enumerate(_list(value, "ipam.routes")):
        where = f"ipam.routes[{i}]"
        obj = _obj(raw, where) or {}
        dst_text = _str(_get(obj, "dst"), f"{where}.dst")
        dst = _parse_cidr(dst_text)
        if dst is None:
            raise CNIError(INVALID_CONFIG, f"invalid CIDR address: {dst_text}")
        addr, prefix, _ = dst
        routes.append(Route(
            dst=ipaddress.ip_network((addr, prefix), strict=False),
            gw=_decode_ip(_get(obj, "gw"), f"{where}.gw"),
            mtu=_opt_int(_get(obj, "mtu"), f"{where}.mtu"),
            advmss=_opt_int(_get(obj, "advmss"), f"{where}.advmss"),
            priority=_opt_int(_get(obj, "priority"), f"{where}.priority"),
            table=_opt_int(_get(obj, "table"), f"{where}.table"),
            scope=_opt_int(_get(obj, "scope"), f"{where}.scope"),
        ))
    return routes


def _range_from_file(path: str, read_file: Callable[[str], bytes] | None) -> list[list[_RawRange]]:
    from cni import fastjson

    if read_file is None:
        raise CNIError(INVALID_CONFIG, f'failed to read rangeFromFile "{path}": no file reader')
    try:
        data = read_file(path)
    except OSError as e:
        raise CNIError(INVALID_CONFIG, f'failed to read rangeFromFile "{path}": {e.strerror or e}') from None
    try:
        obj = fastjson.loads(data)
    except ValueError as e:
        raise CNIError(INVALID_CONFIG, f'failed to parse rangeFromFile "{path}" as a Range', str(e)) from None
    if not isinstance(obj, dict):
        raise CNIError(INVALID_CONFIG, f'failed to parse rangeFromFile "{path}" as a Range')
    raw = _decode_range(obj, "rangeFromFile")
    if raw.subnet is None:
        raise CNIError(INVALID_CONFIG, f'failed to parse rangeFromFile "{path}" as a Range')
    return [[raw]]


def parse(config: dict[str, Any], args: dict[str, str] | None = None, version: str | None = None,
          read_file: Callable[[str], bytes] | None = None) -> IPAMConfig:
    """Parse and validate the configuration for ADD, CHECK and STATUS.

    `args` are the CNI_ARGS pairs (only `IP` is read), `version` the config's cniVersion.
    Requested addresses come from CNI_ARGS `IP`, then `args.cni.ips`, then `runtimeConfig.ips`;
    ranges are `runtimeConfig.ipRanges`, then the legacy top-level range, then `ipam.ranges`.
    """
    if not isinstance(config, dict):
        raise _type_error("network configuration", "an object", config)
    ipam = _ipam(config)
    name, data_dir = parse_location(config)
    if version is None:
        version = _str(_get(config, "cniVersion"), "cniVersion")
    raw = _Decoded(config, ipam)
    requested = _requested((args or {}).get("IP", ""), raw)
    ranges = _range_sets(raw, version, read_file)
    return IPAMConfig(name, data_dir, ranges, raw.routes, raw.resolv_conf, requested)


class _Decoded:
    """Every part of the config decoded first, as json.Unmarshal would: a syntax error is reported
    before any range error, in the order of the fields."""

    __slots__ = ("args_ips", "legacy", "range_file", "ranges", "resolv_conf", "routes", "runtime_ips",
                 "runtime_ranges")

    def __init__(self, config: dict[str, Any], ipam: dict[str, Any]) -> None:
        self.legacy = _decode_range(ipam, "ipam")
        self.ranges = _decode_range_sets(_get(ipam, "ranges"), "ipam.ranges")
        self.routes = _decode_routes(_get(ipam, "routes"))
        self.resolv_conf = _str(_get(ipam, "resolvConf"), "ipam.resolvConf")
        self.range_file = _str(_get(ipam, "rangeFromFile"), "ipam.rangeFromFile")
        runtime = _obj(_get(config, "runtimeConfig"), "runtimeConfig") or {}
        self.runtime_ranges = _decode_range_sets(_get(runtime, "ipRanges"), "runtimeConfig.ipRanges")
        self.runtime_ips = _decode_requested(_get(runtime, "ips"), "runtimeConfig.ips")
        cni_args = _obj(_get(_obj(_get(config, "args"), "args") or {}, "cni"), "args.cni") or {}
        self.args_ips = _decode_requested(_get(cni_args, "ips"), "args.cni.ips")


def _requested(env_ip: str, raw: _Decoded) -> list[IPAddress]:
    """CNI_ARGS IP, then args.cni.ips, then runtimeConfig.ips; each address once, first place kept."""
    requested: list[IPAddress] = []
    if env_ip:
        ip = parse_requested(env_ip)
        if ip is None:
            raise CNIError(INVALID_CONFIG,
                           f'ARGS: error parsing value of pair "IP={env_ip}": invalid IP address {env_ip}')
        requested.append(ip)
    requested.extend(raw.args_ips)
    requested.extend(raw.runtime_ips)
    unique: dict[str, IPAddress] = {}
    for ip in requested:
        unique.setdefault(ip_name(ip), ip)
    return list(unique.values())


def _range_sets(raw: _Decoded, version: str, read_file: Callable[[str], bytes] | None) -> list[RangeSet]:
    """runtimeConfig.ipRanges, the legacy range, ipam.ranges (else rangeFromFile), canonical and
    checked: at most one set per family before 0.3.0, no two sets overlapping."""
    raw_sets = [*raw.runtime_ranges, *([[raw.legacy]] if raw.legacy.subnet is not None else []), *raw.ranges]
    if not raw_sets and raw.range_file:
        raw_sets = _range_from_file(raw.range_file, read_file)
    if not raw_sets:
        raise CNIError(INVALID_CONFIG, "no IP ranges specified")
    ranges: list[RangeSet] = []
    for i, raw_set in enumerate(raw_sets):
        try:
            ranges.append(_canonical_set(raw_set))
        except _Invalid as e:
            raise CNIError(INVALID_CONFIG, f"invalid range set {i}: {e}") from None
    _check_families(ranges, version)
    _check_overlaps(ranges)
    return ranges


def _check_families(ranges: list[RangeSet], version: str) -> None:
    """Before spec 0.3.0 a result holds one address per family, so at most one range set each."""
    per_family = [rs[0].start.version for rs in ranges]
    parsed = versions.split(version)  # malformed counts as too old, as Go's semver check fails
    if max(per_family.count(4), per_family.count(6)) > 1 and (parsed is None or parsed < (0, 3, 0)):
        raise CNIError(INVALID_CONFIG,
                       f"CNI version {version} does not support more than 1 address per family")


def _check_overlaps(ranges: list[RangeSet]) -> None:
    for i, s1 in enumerate(ranges):
        for j in range(i + 1, len(ranges)):
            if any(_overlaps(a, b) for a in s1 for b in ranges[j]):
                raise CNIError(INVALID_CONFIG, f"range set {i} overlaps with {j}")


# ---- resolv.conf -------------------------------------------------------------------------------
def parse_resolv_conf(text: str) -> DNS:
    """The DNS settings of a resolv.conf: nameserver, domain, search and options lines."""
    dns = DNS()
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        fields = line.split()
        if len(fields) < 2:
            continue
        key = fields[0]
        if key == "nameserver":
            dns.nameservers.append(fields[1])
        elif key == "domain":
            dns.domain = fields[1]
        elif key == "search":
            dns.search.extend(fields[1:])
        elif key == "options":
            dns.options.extend(fields[1:])
    return dns
