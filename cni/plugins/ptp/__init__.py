"""ptp: a veth pair per container, routed through the host end (no bridge, no layer 2 between pods).

The container's address gets a /32 (/128) route to its gateway and its subnet through that
gateway; the host end carries each gateway address and a host route to the container. The verbs
live in their own modules and are imported when they run:

    add.py        ADD, step by step (IPAM, forwarding, the veth pair, both ends, masquerading)
    delete.py     DEL: every teardown step runs, whatever is already gone
    check.py      CHECK against prevResult
    config.py     the config: defaults and the rules the schema cannot express (pure)
    routes.py     the point-to-point addresses and routes of each end (pure)
    container.py  the container side: sysctls, addresses, routes
    host.py       the host side: the veth pair, gateway addresses, host routes

Forwarding, ipMasq, GC and the container end's removal are the steps every veth plugin takes:
`cni.contract.veth_attachment`.
"""

from __future__ import annotations

from cni.contract import delegate
from cni.contract.result import text_on_delete
from cni.contract.versions import SUPPORTED

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cni.contract.request import Request
    from cni.contract.result import Result

TYPE = "ptp"
SCHEMA = "ptp"
CNI_ARGS_KEYS = None  # the reference plugin does not read CNI_ARGS
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
    """Ready when the IPAM plugin is; a config ADD would refuse is not ready (code 7)."""
    from . import config

    config.load(req.config)
    delegate.ipam(req, "STATUS")


def gc(req: Request) -> None:
    """Remove masquerade rules of attachments not in the valid list, then let IPAM collect."""
    from cni.contract.veth_attachment import gc as run_gc

    run_gc(req)
