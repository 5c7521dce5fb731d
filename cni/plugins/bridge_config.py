"""The bridge plugin's config: defaults and the rules the schema cannot express.

Pure functions over the validated stdin config (keys already in the schema's spelling) and the
parsed CNI_ARGS; nothing here touches the kernel.
"""

from __future__ import annotations

from cni.contract.errors import INVALID_CONFIG, CNIError

DEFAULT_BRIDGE = "cni0"
MIN_MTU = 68
_HEX = frozenset("0123456789abcdefABCDEF")


def _is_mac(mac: str) -> bool:
    """Six hex byte pairs separated by ':' or '-' (checked without `re`, which costs ~6 ms to import)."""
    return (len(mac) == 17 and all(sep in ":-" for sep in mac[2::3])
            and all(mac[i] in _HEX and mac[i + 1] in _HEX for i in range(0, 17, 3)))


class BridgeConf:
    """Everything ADD, DEL, CHECK and GC need to know, with the reference's defaults."""

    __slots__ = (
        "name", "bridge", "is_gateway", "is_default_gateway", "force_address", "ip_masq",
        "ip_masq_backend", "mtu", "hairpin", "promisc", "vlan", "vlans", "preserve_default_vlan",
        "macspoofchk", "enable_dad", "disable_container_interface", "port_isolation", "ipam_type",
        "dns", "mac",
    )  # fmt: skip

    def __init__(self, **values: object) -> None:
        for key in self.__slots__:
            setattr(self, key, values.get(key))

    @property
    def layer3(self) -> bool:
        """IPAM runs (ipam.type is set); without it the attachment is layer 2 only."""
        return bool(self.ipam_type)

    @property
    def vlan_filtering(self) -> bool:
        return bool(self.vlan) or self.vlans is not None


def _fail(msg: str, details: str = "") -> CNIError:
    return CNIError(INVALID_CONFIG, msg, details)


def collect_trunk(items: list[dict[str, object]] | None) -> list[int] | None:
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


def pick_mac(config: dict[str, object], cni_args: dict[str, str]) -> str | None:
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


def dns_override(config: dict[str, object]) -> dict[str, object] | None:
    """The config's `dns` when any part of it is set (it then replaces IPAM's), else None."""
    dns = config.get("dns")
    if not isinstance(dns, dict):
        return None
    if any(dns.get(k) is not None for k in ("nameservers", "search", "options")) or dns.get("domain"):
        return dns
    return None


def load(config: dict[str, object], cni_args: dict[str, str], *, for_add: bool = True) -> BridgeConf:
    """Build a BridgeConf from a schema-checked config; code 7 for combinations that cannot work.

    DEL uses `for_add=False`: it must clean up even after the config stopped validating fully
    (e.g. a bad MAC), so only what teardown needs has to be readable.
    """
    ipam = config.get("ipam") or {}
    conf = BridgeConf(
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
        vlan=config.get("vlan") or 0,
        vlans=None,
        preserve_default_vlan=config.get("preserveDefaultVlan") is not False,
        macspoofchk=bool(config.get("macspoofchk")),
        enable_dad=bool(config.get("enabledad")),
        disable_container_interface=bool(config.get("disableContainerInterface")),
        port_isolation=bool(config.get("portIsolation")),
        ipam_type=ipam.get("type") or "",
        dns=dns_override(config),
        mac=None,
    )
    if not for_add:
        return conf
    conf.vlans = collect_trunk(config.get("vlanTrunk"))
    if conf.vlan and conf.vlans:  # a port is an access port (vlan) or a trunk (vlanTrunk), as the reference
        raise _fail("cannot set vlan and vlanTrunk at the same time",
                    "vlan makes an access port, vlanTrunk a trunk port; use one")
    if conf.mtu is not None and conf.mtu < MIN_MTU:
        raise _fail(f"invalid MTU {conf.mtu}", f"mtu must be {MIN_MTU}-65535 (or 0 for the kernel default)")
    if conf.hairpin and conf.promisc:
        raise _fail("cannot set hairpin mode and promiscuous mode at the same time",
                    "hairpinMode and promiscMode are exclusive")
    if conf.disable_container_interface and conf.layer3:
        raise _fail("cannot use IPAM when 'disableContainerInterface' flag is set",
                    "an interface left down cannot be given addresses; drop ipam or the flag")
    conf.mac = pick_mac(config, cni_args)
    return conf
