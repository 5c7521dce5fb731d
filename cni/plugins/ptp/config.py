"""The ptp plugin's config: the keys of the reference's NetConf with its defaults, and the rules
the schema cannot express. Pure: nothing here touches the kernel."""

from __future__ import annotations

from cni.contract.errors import INVALID_CONFIG, CNIError
from cni.contract.veth_attachment import dns_override
from cni.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MIN_MTU = 68


class PtpConf(Record):
    """What ADD, DEL and CHECK need: `mtu` None for the kernel's default, `dns` None unless set."""

    __slots__ = ("name", "ip_masq", "ip_masq_backend", "mtu", "ipam_type", "dns")
    if TYPE_CHECKING:
        name: str
        ip_masq: bool
        ip_masq_backend: str | None
        mtu: int | None
        ipam_type: str
        dns: dict | None


def load(config: dict[str, Any], *, for_add: bool = True) -> PtpConf:
    """A PtpConf from a schema-checked config; code 7 for what cannot work.

    DEL uses `for_add=False`: it cleans up whatever the config says, so nothing is refused.
    """
    conf = PtpConf(
        name=config["name"],
        ip_masq=bool(config.get("ipMasq")),
        ip_masq_backend=config.get("ipMasqBackend"),
        mtu=config.get("mtu") or None,
        ipam_type=(config.get("ipam") or {}).get("type") or "",
        dns=dns_override(config),
    )
    if not for_add:
        return conf
    if not conf.ipam_type:
        raise CNIError(INVALID_CONFIG, "ptp needs an IPAM plugin: ipam.type is missing",
                       "the container's addresses and the host end's gateways come from IPAM")
    if conf.mtu is not None and conf.mtu < MIN_MTU:
        raise CNIError(INVALID_CONFIG, f"invalid MTU {conf.mtu}",
                       f"mtu must be {MIN_MTU}-65535 (or 0 for the kernel default)")
    return conf
