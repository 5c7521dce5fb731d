"""The bridge plugin's failures: code 999 with the reference's wording where operators grep for it."""

from __future__ import annotations

from cni.contract.errors import INTERNAL, CNIError


def fail(msg: str, err: BaseException | str = "") -> CNIError:
    return CNIError(INTERNAL, msg, str(err))
