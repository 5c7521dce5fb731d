"""errors.attempt: a DEL or GC step's CNI error is kept for the verb, every later step still runs."""

from __future__ import annotations

import pytest

from cni.contract.errors import INTERNAL, TRY_AGAIN_LATER, CNIError, attempt


def test_attempt_keeps_cni_errors_in_order_and_runs_every_step() -> None:
    ran: list[str] = []

    def step(name: str, code: int | None = None) -> None:
        ran.append(name)
        if code is not None:
            raise CNIError(code, f"{name} failed")

    errors: list[CNIError] = []
    attempt(errors, step, "ipam", TRY_AGAIN_LATER)
    attempt(errors, step, "link")
    attempt(errors, step, "masq", INTERNAL)
    assert ran == ["ipam", "link", "masq"]
    assert [(e.code, e.msg) for e in errors] == [(TRY_AGAIN_LATER, "ipam failed"), (INTERNAL, "masq failed")]


def test_attempt_lets_anything_but_a_cni_error_through() -> None:
    """A bug is not a step's failure: it is not swallowed into the verb's list."""
    errors: list[CNIError] = []
    with pytest.raises(ZeroDivisionError):
        attempt(errors, lambda: 1 // 0)
    assert errors == []
