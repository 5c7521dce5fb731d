"""ipMasq for ptp through `cni.net.firewall.masq` (both backends), its failures as CNI errors.

The firewall is imported only when a step runs: it pulls in subprocess, json and hashlib.
"""

from __future__ import annotations

from cni.contract.errors import failed


def setup_masq(backend: str | None, ips: list, network: str, ifname: str, container_id: str) -> None:
    from cni.net.firewall import masq
    from cni.net.firewall.tools import FirewallError

    try:
        masq.setup(backend, ips, network, ifname, container_id)
    except FirewallError as e:
        raise failed(e) from None


def teardown_masq(network: str, ifname: str, container_id: str, backend: str | None = None) -> None:
    """Remove the attachment's masquerade rules from both backends (only `backend`'s failure counts)."""
    from cni.net.firewall import masq
    from cni.net.firewall.tools import FirewallError

    try:
        masq.teardown(network, ifname, container_id, backend)
    except FirewallError as e:
        raise failed(e, "failed to remove masquerade rules: ") from None


def gc_masq(network: str, valid: set[tuple[str, str]]) -> None:
    from cni.net.firewall import masq
    from cni.net.firewall.tools import FirewallError

    try:
        masq.gc(network, valid)
    except FirewallError as e:
        raise failed(e, "failed to collect masquerade rules: ") from None
