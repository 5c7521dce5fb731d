"""The firewall executables: where they are, one run with the runtime's environment, one error type."""

from __future__ import annotations

import os

from cni.childenv import child_env

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable


class FirewallError(Exception):
    """A firewall tool failed; the message names the tool, what it was doing and its stderr."""


def which(tool: str) -> str | None:
    """The tool's path on PATH (or in /usr/sbin, /sbin, which a runtime's PATH may lack)."""
    dirs = os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").split(":")
    for directory in [*dirs, "/usr/sbin", "/sbin"]:
        path = os.path.join(directory or ".", tool)
        if os.access(path, os.X_OK):
            return path
    return None


def call(argv: list[str], stdin: str | None = None) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of the tool argv[0]; FirewallError when it is not installed."""
    import subprocess

    path = which(argv[0])
    if path is None:
        raise FirewallError(f"{argv[0]} is not installed")
    proc = subprocess.run([path, *argv[1:]], input=stdin, capture_output=True, text=True, check=False,
                          env=child_env())
    return proc.returncode, proc.stdout, proc.stderr


def run(argv: list[str], stdin: str | None = None, what: str = "") -> str:
    """The tool's stdout; FirewallError naming `what` when it is missing or fails."""
    try:
        code, out, err = call(argv, stdin)
    except FirewallError as e:
        raise FirewallError(f"{what or argv[0]}: {e}") from None
    if code != 0:
        err = err.strip().replace("\n", "; ")
        raise FirewallError(f"{what or argv[0]}: {argv[0]} exited {code}: {err}")
    return out


def default_backend() -> str:
    """iptables, unless only nft is installed (the reference's choice)."""
    if which("iptables") is None and which("nft") is not None:
        return "nftables"
    return "iptables"


def every(*steps: Callable[[], None]) -> None:
    """Run every step; the failures are reported together at the end."""
    errors = []
    for step in steps:
        try:
            step()
        except FirewallError as e:
            errors.append(str(e))
    if errors:
        raise FirewallError("; ".join(errors))
