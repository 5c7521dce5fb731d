"""bridge: attach the container to a host bridge through a veth pair and give it its addresses.

The plugin's verbs; each lives in its own module of this package:

    add.py        ADD, step by step (the bridge, the veth pair, IPAM, the container, the gateway)
    delete.py     DEL: every teardown step runs, whatever is already gone
    check.py      CHECK against prevResult
    config.py     the config: defaults and the rules the schema cannot express (pure)
    gateways.py   gateway addresses and default routes from the IPAM result (pure)
    host.py       the host side: the bridge, the veth pair and its port, gateway address
    container.py  the container side: sysctls, addresses, routes, DAD
    rules.py      the MAC spoof check

Forwarding, ipMasq, GC and the container end's removal are the steps every veth plugin takes:
`cni.contract.veth_attachment`.

A verb imports its module when it runs: each call pays only for its own verb.
"""

from __future__ import annotations

from cni.contract import delegate
from cni.contract.result import text_on_delete
from cni.contract.versions import SUPPORTED

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cni.contract.request import Request
    from cni.contract.result import Result

TYPE = "bridge"
SCHEMA = "bridge"
CNI_ARGS_KEYS = frozenset({"MAC"})
NEEDS_NETNS = True
VERSIONS = SUPPORTED
READS_PREV_RESULT = True
IPAM = False
prev_result_as_text = text_on_delete  # CHECK compares prevResult's addresses; DEL reads none

def add(req: Request) -> Result:
    from .add import add as run_add

    return run_add(req)


def delete(req: Request) -> None:
    from .delete import delete as run_delete

    run_delete(req)


def check(req: Request) -> None:
    from .check import check as run_check

    run_check(req)


def status(req: Request) -> None:
    """Ready when the IPAM plugin is (layer 2 only: always)."""
    if (req.config.get("ipam") or {}).get("type"):
        delegate.ipam(req, "STATUS")


def gc(req: Request) -> None:
    """Remove masquerade rules of attachments not in the valid list, then let IPAM collect."""
    from cni.contract.veth_attachment import gc as run_gc

    run_gc(req)
