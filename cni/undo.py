"""The undo stack of a verb that makes several things: what was made, undone in reverse on failure."""

from __future__ import annotations

import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


class Undo:
    """Steps pushed as things are made; `run` undoes them in reverse order.

    Every step is tried: one that fails (the object already gone, say) is logged on stderr and does
    not stop the others, and the error that made the verb fail is the one reported.
    """

    __slots__ = ("_steps", "_who")

    def __init__(self, who: str) -> None:
        self._who = who
        self._steps: list[tuple[str, Callable[[], object]]] = []

    def push(self, what: str, step: Callable[[], object]) -> None:
        self._steps.append((what, step))

    def run(self) -> None:
        for what, step in reversed(self._steps):
            try:
                step()
            except Exception as e:  # keep undoing; the original error is what gets reported
                sys.stderr.write(f"{self._who}: cleanup after failed ADD: {what}: {e}\n")
