"""CNI errors: every failure a plugin reports becomes one of these, printed as JSON on stdout."""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


# Codes from the CNI specification (0-99 reserved), plus libcni's own.
INCOMPATIBLE_VERSION = 1
UNSUPPORTED_FIELD = 2
UNKNOWN_CONTAINER = 3
INVALID_ENVIRONMENT = 4
IO_FAILURE = 5
DECODING_FAILURE = 6
INVALID_CONFIG = 7
INVALID_NETNS = 8
TRY_AGAIN_LATER = 11
NOT_AVAILABLE = 50
INTERNAL = 999


class CNIError(Exception):
    """A failure with a CNI error code, a message for operators and optional details."""

    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.details = details

    def to_json(self, cni_version: str) -> dict[str, Any]:
        """The error object the spec puts on stdout."""
        out: dict[str, Any] = {"cniVersion": cni_version, "code": self.code, "msg": self.msg}
        if self.details:
            out["details"] = self.details
        return out

    def __str__(self) -> str:
        return f"{self.msg}; {self.details}" if self.details else self.msg


def failed(err: BaseException, prefix: str = "") -> CNIError:
    """A step's failure: code 11 (try again later) when the step overran its bound (its exception
    sets `overran_bound`: a lock holder or a hung tool may be gone on the retry) or met a state
    that another call will clear (`try_again`), 999 otherwise."""
    again = getattr(err, "overran_bound", False) or getattr(err, "try_again", False)
    code = TRY_AGAIN_LATER if again else INTERNAL
    return CNIError(code, f"{prefix}{err}")


def internal(msg: str, err: BaseException | str = "") -> CNIError:
    """Code 999, the plugin's own work failed; `err` (an exception or text) becomes the details."""
    return CNIError(INTERNAL, msg, str(err))


def attempt(errors: list[CNIError], step: Callable[..., object], *args: object) -> None:
    """Run one step of a verb whose every step runs whatever an earlier one found (DEL, GC):
    its CNI error is kept in `errors` for the verb to report, not raised."""
    try:
        step(*args)
    except CNIError as e:
        errors.append(e)
