"""The bridge plugin's config: defaults and the rules the schema cannot express.

Pure functions over the validated stdin config (keys already in the schema's spelling) and the
parsed CNI_ARGS; nothing here touches the kernel.
"""

from __future__ import annotations

from cni.contract.errors import INVALID_CONFIG, CNIError
from cni.contract.veth_attachment import dns_override
from cni.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_BRIDGE = "cni0"
MIN_MTU = 68
_HEX = frozenset("0123456789abcdefABCDEF")


def _is_mac(mac: str) -> bool:
    """Six hex byte pairs separated by ':' or '-' (checked without `re`: every call would import it)."""
    return (len(mac) == 17 and all(sep in ":-" for sep in mac[2::3])
            and all(mac[i] in _HEX and mac[i + 1] in _HEX for i in range(0, 17, 3)))


class PortPlan(Record):
    """What the host end of a veth gets as a bridge port: its flags and its VLANs."""

    __slots__ = ("hairpin", "isolated", "access_vlan", "trunk_vlans", "preserve_default_vlan")
    if TYPE_CHECKING:
        hairpin: bool
        isolated: bool
        access_vlan: int
        trunk_vlans: list[int] | None
        preserve_default_vlan: bool

    @property
    def drops_default_vlan(self) -> bool:
        """The port leaves the bridge's default VLAN when it gets VLANs of its own (unless preserved)."""
        return bool(self.access_vlan or self.trunk_vlans) and not self.preserve_default_vlan

    @property
    def native_vlan(self) -> int:
        """The untagged PVID of the port, 0: left as the kernel made it. A trunk without `vlan` has
        VLAN 1 as its native VLAN (the reference's choice since v1.8.0, kept for older configs)."""
        if self.access_vlan:
            return self.access_vlan
        return 1 if self.trunk_vlans else 0


class BridgeConf(Record):
    """Everything ADD, DEL, CHECK and GC need to know, with the reference's defaults.

    `access_vlan` is the config's `vlan` (the port's untagged PVID, 0: none); `trunk_vlans` the
    VIDs of `vlanTrunk` (tagged, None: no trunk). With both, `vlan` is the trunk's native VLAN.
    `trunk_set` is whether the key is there at all: even an empty `vlanTrunk` turns on VLAN
    filtering on a bridge ADD creates, as with the reference.
    """

    __slots__ = (
        "name", "bridge", "is_gateway", "is_default_gateway", "force_address", "ip_masq",
        "ip_masq_backend", "mtu", "hairpin", "promisc", "access_vlan", "trunk_vlans", "trunk_set",
        "preserve_default_vlan", "macspoofchk", "enable_dad", "disable_container_interface", "port_isolation",
        "ipam_type", "dns", "mac",
    )  # fmt: skip
    if TYPE_CHECKING:
        name: str
        bridge: str
        is_gateway: bool
        is_default_gateway: bool
        force_address: bool
        ip_masq: bool
        ip_masq_backend: str | None
        mtu: int | None
        hairpin: bool
        promisc: bool
        access_vlan: int
        trunk_vlans: list[int] | None
        trunk_set: bool
        preserve_default_vlan: bool
        macspoofchk: bool
        enable_dad: bool
        disable_container_interface: bool
        port_isolation: bool
        ipam_type: str
        dns: dict[str, object] | None
        mac: str | None

    @property
    def layer3(self) -> bool:
        """IPAM runs (ipam.type is set); without it the attachment is layer 2 only."""
        return bool(self.ipam_type)

    @property
    def vlan_filtering(self) -> bool:
        return bool(self.access_vlan) or bool(self.trunk_set)


def _fail(msg: str, details: str = "") -> CNIError:
    return CNIError(INVALID_CONFIG, msg, details)


def collect_trunk(items: list[dict[str, Any]] | None) -> list[int] | None:
    """The sorted, de-duplicated VLAN IDs of `vlanTrunk`; None when the key is absent.

    Follows the reference: `{minID, maxID}` is a range (both needed, 1-4094, min <= max),
    `{id}` one VID; an empty result is None (no trunk).
    """
    if items is None:
        return None
    vids: set[int] = set()
    for item in items:
        lo, hi, one = item.get("minID"), item.get("maxID"), item.get("id")
        if lo is not None and hi is not None:
            if not 0 < lo <= 4094:
                raise _fail("incorrect trunk minID parameter", f"minID {lo} must be 1-4094")
            if not 0 < hi <= 4094:
                raise _fail("incorrect trunk maxID parameter", f"maxID {hi} must be 1-4094")
            if hi < lo:
                raise _fail("minID is greater than maxID in trunk parameter", f"minID {lo}, maxID {hi}")
            vids.update(range(lo, hi + 1))
        elif lo is None and hi is not None:
            raise _fail("minID and maxID should be configured simultaneously, minID is missing")
        elif lo is not None and hi is None:
            raise _fail("minID and maxID should be configured simultaneously, maxID is missing")
        if one is not None:
            if not 0 < one <= 4094:
                raise _fail("incorrect trunk id parameter", f"id {one} must be 1-4094")
            vids.add(one)
    return sorted(vids) or None


def normalize_mac(mac: str, where: str) -> str:
    """A MAC as the kernel prints it (lower case, colons); code 7 naming the source if invalid."""
    if not _is_mac(mac):
        raise _fail(f"invalid MAC address {mac!r} in {where}",
                    "expected six hex bytes, e.g. c2:11:22:33:44:55")
    mac = mac.replace("-", ":").lower()
    if int(mac[:2], 16) & 1:
        raise _fail(f"invalid MAC address {mac!r} in {where}",
                    "a multicast MAC cannot be an interface address")
    return mac


def pick_mac(config: dict[str, Any], cni_args: dict[str, str]) -> str | None:
    """The container MAC: runtimeConfig.mac, else args.cni.mac, else CNI_ARGS MAC."""
    runtime = (config.get("runtimeConfig") or {}).get("mac")
    if runtime:
        return normalize_mac(runtime, "runtimeConfig.mac")
    args_mac = ((config.get("args") or {}).get("cni") or {}).get("mac")
    if args_mac:
        return normalize_mac(args_mac, "args.cni.mac")
    env_mac = cni_args.get("MAC")
    if env_mac:
        return normalize_mac(env_mac, "CNI_ARGS MAC")
    return None


def container_port(conf: BridgeConf) -> PortPlan:
    """The container's host veth: the configured port flags and VLANs."""
    return PortPlan(hairpin=conf.hairpin, isolated=conf.port_isolation, access_vlan=conf.access_vlan,
                    trunk_vlans=conf.trunk_vlans, preserve_default_vlan=conf.preserve_default_vlan)


def vlan_gateway_port(conf: BridgeConf) -> PortPlan:
    """The port behind `<bridge>.<vlan>`: an access port of the VLAN, without the container's flags."""
    return PortPlan(hairpin=False, isolated=False, access_vlan=conf.access_vlan, trunk_vlans=None,
                    preserve_default_vlan=conf.preserve_default_vlan)


def load(config: dict[str, Any], cni_args: dict[str, str], *, for_add: bool = True) -> BridgeConf:
    """Build a BridgeConf from a schema-checked config; code 7 for combinations that cannot work.

    DEL uses `for_add=False`: it must clean up even after the config stopped validating fully
    (e.g. a bad MAC), so only what teardown needs has to be readable.
    """
    conf = _read(config)
    if not for_add:
        return conf
    if why := bridge_name_problem(conf.bridge):
        raise _fail(f"invalid bridge name {conf.bridge!r}: {why}", "bridge: at most 15 bytes, no '%', NUL, "
                    "'/', ':' or whitespace")
    conf.trunk_vlans = collect_trunk(config.get("vlanTrunk"))
    _refuse_conflicts(conf)
    conf.mac = pick_mac(config, cni_args)
    return conf


def bridge_name_problem(name: str) -> str:
    """Why the kernel would not make a link of exactly this name, or "": it expands `%d` into a
    number (the plugin would then never find the link it made), a NUL cuts the name short, and
    IFNAMSIZ counts bytes, not characters."""
    if "%" in name:
        return "'%' is a kernel name template"
    if "\0" in name:
        return "it contains a NUL byte"
    if any("\ud800" <= c <= "\udfff" for c in name):
        return "it is not valid UTF-8 (a lone surrogate)"
    if len(name.encode("utf-8", "surrogateescape")) > 15:
        return "longer than 15 bytes"
    return ""


def _read(config: dict[str, Any]) -> BridgeConf:
    """The keys as they are, with the reference's defaults; the trunk and the MAC are left unread."""
    ipam = config.get("ipam") or {}
    return BridgeConf(
        name=config["name"],
        bridge=config.get("bridge") or DEFAULT_BRIDGE,
        is_gateway=bool(config.get("isGateway")) or bool(config.get("isDefaultGateway")),
        is_default_gateway=bool(config.get("isDefaultGateway")),
        force_address=bool(config.get("forceAddress")),
        ip_masq=bool(config.get("ipMasq")),
        ip_masq_backend=config.get("ipMasqBackend"),
        mtu=config.get("mtu") or None,
        hairpin=bool(config.get("hairpinMode")),
        promisc=bool(config.get("promiscMode")),
        access_vlan=config.get("vlan") or 0,
        trunk_vlans=None,
        trunk_set=config.get("vlanTrunk") is not None,
        preserve_default_vlan=bool(config.get("preserveDefaultVlan")),
        macspoofchk=bool(config.get("macspoofchk")),
        enable_dad=bool(config.get("enabledad")),
        disable_container_interface=bool(config.get("disableContainerInterface")),
        port_isolation=bool(config.get("portIsolation")),
        ipam_type=ipam.get("type") or "",
        dns=dns_override(config),
        mac=None,
    )


def _refuse_conflicts(conf: BridgeConf) -> None:
    """The combinations that cannot work (code 7), in the reference's order and words."""
    if conf.mtu is not None and conf.mtu < MIN_MTU:
        raise _fail(f"invalid MTU {conf.mtu}", f"mtu must be {MIN_MTU}-65535 (or 0 for the kernel default)")
    if conf.disable_container_interface and conf.layer3:
        raise _fail("cannot use IPAM when DisableContainerInterface flag is set",
                    "an interface left down cannot be given addresses; drop ipam or "
                    "disableContainerInterface")
    if conf.hairpin and conf.promisc:
        raise _fail("cannot set hairpin mode and promiscuous mode at the same time",
                    "hairpinMode and promiscMode are exclusive")
