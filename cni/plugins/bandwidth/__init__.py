"""bandwidth: limit a container's traffic with token buckets, chained after the plugin that made its veth.

ADD finds the host side of the container's veth, puts a tbf on it for traffic towards the
container (ingress), and for traffic from the container (egress) redirects everything arriving
on it to an IFB device that has its own tbf. The previous result is passed on with the IFB
appended. The verbs, each in its own module of this package:

    add.py      ADD: the ingress tbf, then the IFB with its tbf, then the redirect
    delete.py   DEL: the attachment's IFB (the veth's qdiscs go with the veth)
    check.py    CHECK: the tbfs, the IFB and the redirect ADD would install
    gc.py       GC: IFBs of attachments the runtime no longer lists
    config.py   which limits apply, and the prevResult the plugin needs
    shaping.py  the figures: limits, validation, token buckets (pure)
    steps.py    the kernel: the host veth, tbf and ingress qdiscs, the IFB, the redirect filter

The IFB's name and the tag that records its owner are `cni.layout.bandwidth`'s. A verb imports its
module when it runs: each call pays only for its own verb.
"""

from __future__ import annotations

from cni.contract.result import text_always

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cni.contract.request import Request
    from cni.contract.result import Result

TYPE = "bandwidth"
SCHEMA = "bandwidth"
CNI_ARGS_KEYS = None  # the reference plugin does not read CNI_ARGS
NEEDS_NETNS = True
READS_PREV_RESULT = True
IPAM = False
VERSIONS = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")  # a chained plugin needs prevResult (0.3.0+)
# prevResult is only passed on (its interfaces read): its addresses stay text when canonical.
prev_result_as_text = text_always


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
    """No state outside the attachments: always ready."""


def gc(req: Request) -> None:
    from .gc import gc as run_gc

    run_gc(req)
