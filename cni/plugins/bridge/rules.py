"""The bridge's own firewall step (the MAC spoof check) as CNI failures; ipMasq is
`cni.contract.veth_attachment`'s.

`cni.net.firewall` is imported only when a step runs: it pulls in subprocess, json and hashlib,
which an attachment without firewall rules does not need.
"""

from __future__ import annotations

import sys

from cni.contract.errors import failed


def setup_spoofcheck(host_ifname: str, mac: str, container_id: str, ifname: str) -> None:
    from cni.net.firewall import spoofcheck
    from cni.net.firewall.tools import FirewallError

    try:
        spoofcheck.setup(host_ifname, mac, container_id, ifname)
    except FirewallError as e:
        raise failed(e) from None


def teardown_spoofcheck(container_id: str, ifname: str) -> None:
    """Remove the spoof check; a failure is only written to stderr, as the reference's DEL does."""
    from cni.net.firewall import spoofcheck
    from cni.net.firewall.tools import FirewallError

    try:
        spoofcheck.teardown(container_id, ifname)
    except FirewallError as e:
        sys.stderr.write(f"bridge: {e}\n")

