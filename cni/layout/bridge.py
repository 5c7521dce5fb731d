"""What the bridge plugin leaves on a host besides the bridge: the `<bridge>.<vlan>` gateway veth.

The name is the reference's, and also the usual name of an administrator's 802.1Q sub-interface
of the bridge. So the gateway we make carries a tag (its interface alias), and only a device that
carries it is ours to replace; any other device of that name is used as it is, as the reference
uses it.
"""

from __future__ import annotations

VLAN_GATEWAY_TAG = "pycni-bridge vlan-gateway"


def vlan_gateway_name(bridge: str, vlan: int) -> str:
    """`<bridge>.<vlan>`, the reference's name for the VLAN's gateway interface."""
    return f"{bridge}.{vlan}"


def vlan_gateway_alias(bridge: str, vlan: int) -> str:
    """The tag our gateway device carries: what it is, for which bridge and VLAN."""
    return f"{VLAN_GATEWAY_TAG} bridge={bridge} vlan={vlan}"


def is_our_vlan_gateway(alias: str, bridge: str, vlan: int) -> bool:
    """True when a device's alias says we made it as this bridge's gateway for this VLAN."""
    return alias == vlan_gateway_alias(bridge, vlan)
