"""The host-local `ipam` configuration, parsed and validated as the reference plugin does.

Pure: a function from the stdin config (a dict), the CNI_ARGS pairs and the spec version to an
`IPAMConfig`. The only file this module may need (`rangeFromFile`) is read through a callable the
caller passes in, so everything here is testable without a disk.

Keys and types are read as Go's `encoding/json` reads them, by `cni.contract.gojson` (keys match
case-insensitively, the last one wins, unknown keys are ignored).
Errors are `CNIError`s with the reference's wording (code 7 for an invalid configuration).
"""

from __future__ import annotations

from cni.contract import gojson, versions
from cni.contract.errors import INVALID_CONFIG, CNIError
from cni.contract.result import DNS, ROUTE_INT_MAX, Route

from .ranges import (
    Addr,
    Invalid,
    Network,
    RangeSet,
    RawRange,
    canonical_set,
    ip_name,
    overlaps,
    parse_cidr,
    parse_ip,
    parse_requested,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from cni.addrtext import Cidr

DEFAULT_DATA_DIR = "/var/lib/cni/networks"



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


def _path(value: Any, where: str) -> str:
    """A path from the config: a NUL byte can never reach the kernel, so it is refused here."""
    text = _str(value, where)
    if "\0" in text:
        raise CNIError(INVALID_CONFIG, f"{where}: the path contains a NUL byte", repr(text))
    return text


def _opt_int(value: Any, where: str) -> int | None:
    return gojson.read(value, "integer", where, _type_error)


def _route_int(value: Any, where: str, key: str) -> int | None:
    number = _opt_int(value, where)
    if number is not None and not 0 <= number <= ROUTE_INT_MAX[key]:
        raise CNIError(INVALID_CONFIG, f"{where} {number} is out of range: 0 to {ROUTE_INT_MAX[key]}")
    return number


def _decode_ip(value: Any, where: str) -> Addr | None:
    text = _str(value, where)
    if text == "":
        return None
    ip = parse_ip(text)
    if ip is None:
        raise CNIError(INVALID_CONFIG, f"invalid IP address: {text}")
    return ip


def _decode_range(raw: Any, where: str) -> RawRange:
    obj = _obj(raw, where)
    if obj is None:
        obj = {}
    subnet = None
    subnet_value = _get(obj, "subnet")
    if subnet_value is not None:
        text = _str(subnet_value, f"{where}.subnet")
        subnet = parse_cidr(text)
        if subnet is None:
            raise CNIError(INVALID_CONFIG, f"invalid CIDR address: {text}")
    return RawRange(
        subnet,
        _decode_ip(_get(obj, "rangeStart"), f"{where}.rangeStart"),
        _decode_ip(_get(obj, "rangeEnd"), f"{where}.rangeEnd"),
        _decode_ip(_get(obj, "gateway"), f"{where}.gateway"),
    )


def _decode_range_sets(raw: Any, where: str) -> list[list[RawRange]]:
    sets = []
    for i, rs in enumerate(_list(raw, where)):
        items = _list(rs, f"{where}[{i}]")
        sets.append([_decode_range(r, f"{where}[{i}][{j}]") for j, r in enumerate(items)])
    return sets


# ---- the whole configuration --------------------------------------------------------------------
class IPAMConfig:
    """Everything host-local needs for one call."""

    __slots__ = ("data_dir", "name", "ranges", "requested", "resolv_conf", "routes")

    def __init__(self, name: str, data_dir: str, ranges: list[RangeSet], routes: list[Route],
                 resolv_conf: str, requested: list[Addr]) -> None:
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
    data_dir = _path(_get(ipam, "dataDir"), "ipam.dataDir") or DEFAULT_DATA_DIR
    return name, data_dir


def _decode_requested(value: Any, where: str) -> list[Addr]:
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
        dst = parse_cidr(dst_text)
        if dst is None:
            raise CNIError(INVALID_CONFIG, f"invalid CIDR address: {dst_text}")
        network = _route_dst(*dst)
        gw = _decode_ip(_get(obj, "gw"), f"{where}.gw")
        if gw is not None and gw.version != network.version:
            raise CNIError(INVALID_CONFIG, f"invalid route {dst_text} via {ip_name(gw)}",
                           f"{where}.gw is not of the family of its dst")
        routes.append(Route(
            dst=network,
            gw=gw.ip() if gw is not None else None,
            mtu=_route_int(_get(obj, "mtu"), f"{where}.mtu", "mtu"),
            advmss=_route_int(_get(obj, "advmss"), f"{where}.advmss", "advmss"),
            priority=_route_int(_get(obj, "priority"), f"{where}.priority", "priority"),
            table=_route_int(_get(obj, "table"), f"{where}.table", "table"),
            scope=_route_int(_get(obj, "scope"), f"{where}.scope", "scope"),
        ))
    return routes


def _route_dst(addr: Addr, prefix: int, written_as_ipv6: bool) -> Cidr:
    """The destination with its host bits cleared, as a result holds it.

    IPv4-mapped text ("::ffff:10.0.0.0/104") is an IPv4 destination whose mask is the last 32
    bits of the IPv6 one, as the reference prints it: /104 is /8, and any prefix up to /96 is /0.
    """
    if written_as_ipv6 and addr.version == 4:
        prefix = max(0, prefix - 96)
    return Network.of(addr, prefix).cidr()


def _range_from_file(path: str, read_file: Callable[[str], bytes] | None) -> list[list[RawRange]]:
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
        self.resolv_conf = _path(_get(ipam, "resolvConf"), "ipam.resolvConf")
        self.range_file = _path(_get(ipam, "rangeFromFile"), "ipam.rangeFromFile")
        runtime = _obj(_get(config, "runtimeConfig"), "runtimeConfig") or {}
        self.runtime_ranges = _decode_range_sets(_get(runtime, "ipRanges"), "runtimeConfig.ipRanges")
        self.runtime_ips = _decode_requested(_get(runtime, "ips"), "runtimeConfig.ips")
        cni_args = _obj(_get(_obj(_get(config, "args"), "args") or {}, "cni"), "args.cni") or {}
        self.args_ips = _decode_requested(_get(cni_args, "ips"), "args.cni.ips")


def _requested(env_ip: str, raw: _Decoded) -> list[Addr]:
    """CNI_ARGS IP, then args.cni.ips, then runtimeConfig.ips; each address once, first place kept."""
    requested: list[Addr] = []
    if env_ip:
        ip = parse_requested(env_ip)
        if ip is None:
            raise CNIError(INVALID_CONFIG,
                           f'ARGS: error parsing value of pair "IP={env_ip}": invalid IP address {env_ip}')
        requested.append(ip)
    requested.extend(raw.args_ips)
    requested.extend(raw.runtime_ips)
    unique: dict[str, Addr] = {}
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
            ranges.append(canonical_set(raw_set))
        except Invalid as e:
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
            if any(overlaps(a, b) for a in s1 for b in ranges[j]):
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
