"""bridge's MAC spoof check: frames from the host port pass only with the container's source MAC.

Laid out as the reference plugin lays it out (so either plugin's DEL removes either's rules): table
`bridge nat`, base chain `PREROUTING` (filter, priority -300) jumping per host port to
`cni-br-iface-<cid>-<ifname>`, then to `...-mac`, which returns for the container's MAC and drops
the rest; all commented `macspoofchk-<cid>-<ifname>`.
"""

from __future__ import annotations

from . import nftables

TABLE = "nat"
BASE_CHAIN = "PREROUTING"


def spoof_id(container_id: str, ifname: str) -> str:
    return f"{container_id}-{ifname}"


def chains(container_id: str, ifname: str) -> tuple[str, str]:
    iface = "cni-br-iface-" + spoof_id(container_id, ifname)
    return iface, iface + "-mac"


def setup_script(host_ifname: str, mac: str, container_id: str, ifname: str) -> str:
    """The nft batch that lets frames from `host_ifname` through only with source MAC `mac`."""
    t = f"bridge {TABLE}"
    iface, mac_chain = chains(container_id, ifname)
    c = nftables.quote("macspoofchk-" + spoof_id(container_id, ifname))
    return "\n".join([
        f"add table {t}",
        f"add chain {t} {BASE_CHAIN} {{ type filter hook prerouting priority -300 ; policy accept ; }}",
        f"add chain {t} {iface}",
        f"add chain {t} {mac_chain}",
        f"flush chain {t} {iface}",
        f"flush chain {t} {mac_chain}",
        f"add rule {t} {BASE_CHAIN} iifname {nftables.quote(host_ifname)} jump {iface} comment {c}",
        f"add rule {t} {iface} jump {mac_chain} comment {c}",
        f"add rule {t} {mac_chain} ether saddr {mac} return comment {c}",
        f"add rule {t} {mac_chain} drop comment {c}",
    ]) + "\n"


def teardown_script(listing: str, container_id: str, ifname: str) -> str | None:
    """From `nft -j list table bridge nat`: the batch removing this attachment's rules and chains."""
    items = nftables.items_of(listing)
    iface, mac_chain = chains(container_id, ifname)
    tag = "macspoofchk-" + spoof_id(container_id, ifname)
    t = f"bridge {TABLE}"
    present = {item["chain"]["name"] for item in items if "chain" in item}
    lines = [f"delete rule {t} {BASE_CHAIN} handle {item['rule']['handle']}" for item in items
             if "rule" in item and item["rule"].get("chain") == BASE_CHAIN
             and item["rule"].get("comment") == tag]
    for name in (iface, mac_chain):
        if name in present:
            lines.append(f"flush chain {t} {name}")
    for name in (iface, mac_chain):
        if name in present:
            lines.append(f"delete chain {t} {name}")
    return "\n".join(lines) + "\n" if lines else None


def setup(host_ifname: str, mac: str, container_id: str, ifname: str) -> None:
    script = setup_script(host_ifname, mac, container_id, ifname)
    nftables.apply(script, f"setup spoof-check for {host_ifname}")


def teardown(container_id: str, ifname: str) -> None:
    text = nftables.listing("table", "bridge", TABLE)
    if text is None:
        return
    script = teardown_script(text, container_id, ifname)
    if script:
        nftables.apply(script, f"remove spoof-check of {spoof_id(container_id, ifname)}")
