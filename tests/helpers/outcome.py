"""The result of running a CNI executable: exit status, output, and stdout parsed as JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


def parse_json(text: str) -> Any:
    """Parse ``text`` as JSON; ``None`` when it is empty or not JSON."""
    text = text.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


@dataclass
class Outcome:
    """What a plugin or cnitool run produced.

    ``json`` is stdout parsed as JSON (``None`` if stdout was empty or not JSON).
    ``argv`` and ``env`` record what was run, for failure messages.
    """

    rc: int
    stdout: str
    stderr: str
    json: Any
    argv: tuple[str, ...] = ()
    env: dict[str, str] | None = None

    @property
    def returncode(self) -> int:
        return self.rc

    @property
    def ok(self) -> bool:
        return self.rc == 0

    @property
    def code(self) -> int | None:
        """The CNI error code printed on stdout, if the run failed with one."""
        if self.rc != 0 and isinstance(self.json, dict):
            return self.json.get("code")
        return None

    @property
    def msg(self) -> str | None:
        if isinstance(self.json, dict):
            return self.json.get("msg")
        return None

    def describe(self) -> str:
        cni_env = {k: v for k, v in (self.env or {}).items() if k.startswith("CNI_") or k == "CAP_ARGS"}
        return (
            f"argv={list(self.argv)} rc={self.rc}\nenv={cni_env}\n"
            f"stdout={self.stdout.strip()!r}\nstderr={self.stderr.strip()!r}"
        )

    def check(self) -> Outcome:
        """Raise ``AssertionError`` with the whole run described unless it succeeded; return self."""
        if self.rc != 0:
            raise AssertionError("command failed:\n" + self.describe())
        return self

    def expect_error(self, code: int | None = None) -> Outcome:
        """Assert the run failed (with CNI error ``code`` if given) and printed a CNI error; return self."""
        if self.rc == 0:
            raise AssertionError("command unexpectedly succeeded:\n" + self.describe())
        if not isinstance(self.json, dict) or "code" not in self.json:
            raise AssertionError("no CNI error JSON on stdout:\n" + self.describe())
        if code is not None and self.json["code"] != code:
            raise AssertionError(f"expected CNI error code {code}:\n" + self.describe())
        return self
