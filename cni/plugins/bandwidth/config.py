"""What a call of the plugin works from: the limits that apply and the previous plugin's result."""

from __future__ import annotations

from cni.contract.errors import INVALID_CONFIG, CNIError

from . import shaping

TYPE_CHECKING = False
if TYPE_CHECKING:
    from cni.contract.request import Request
    from cni.contract.result import Result


def limits(req: Request) -> shaping.Limits | None:
    """The validated limits, or None when none is set (the plugin then does nothing)."""
    found = shaping.select_limits(req.config)
    if found is None:
        return None
    shaping.validate(found)
    return None if found.is_zero() else found


def need_prev_result(req: Request) -> Result:
    if req.prev_result is None:
        raise CNIError(INVALID_CONFIG, "must be called as a chained plugin: prevResult is missing",
                       "bandwidth shapes the veth made by the plugin before it in the list")
    return req.prev_result
