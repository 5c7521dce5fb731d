"""What the plugins left on this node, read from disk and kernel (nothing here changes anything).

Each kind of thing has its reader: `stores` (host-local reservations of every list's IPAM section),
`cache` (libcni's result cache), `firewall` (ipMasq and portmap chains, nft ipMasq rules), `ifbs`
(bandwidth's IFB devices). A tool that is not installed contributes nothing; one that fails is
reported in `errors`.
"""

from __future__ import annotations

from typing import NamedTuple

from .cache import CACHE_DIR, CacheEntry, cache_entries
from .firewall import Chain, NftRule, read_chains, read_nft_rules
from .ifbs import Ifb, read_ifbs
from .libcni import NetList
from .stores import HostLocal, host_local


class NodeState(NamedTuple):
    host_local: list[HostLocal]
    cache: list[CacheEntry]
    chains: list[Chain]
    nft_rules: list[NftRule]
    ifbs: list[Ifb]
    errors: list[str]


def read(lists: list[NetList], cache_dir: str = CACHE_DIR) -> NodeState:
    """Everything above, for the given lists' host-local stores."""
    errors: list[str] = []
    stores = [hl for lst in lists if not lst.error for hl in host_local(lst)]
    chains = read_chains(errors)
    rules = read_nft_rules(errors)
    devices = read_ifbs(errors)
    return NodeState(stores, cache_entries(cache_dir), chains, rules, devices, errors)
