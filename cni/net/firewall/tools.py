"""The firewall executables: where they are, one run with the runtime's environment, one error type."""

from __future__ import annotations

from cni import sysapi
from cni.childenv import child_env

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable


class FirewallError(Exception):
    """A firewall tool failed; the message names the tool, what it was doing and its stderr."""


class FirewallTimeout(FirewallError):
    """A firewall tool was still running when its bound expired (and was killed), or waited for
    the xtables lock past its bound: a CNI call reports it as "try again later"."""

    overran_bound = True


class NameTaken(FirewallError):
    """The name an attachment's rules need (a chain named by a hash) holds another attachment's
    rules. Not the config's fault, and gone once that attachment is deleted: "try again later"."""

    try_again = True

    @classmethod
    def chain(cls, kind: str, chain: str, mine: tuple[str, str],
              others: Iterable[tuple[str, str] | None]) -> NameTaken:
        """The refusal of an ADD whose hashed chain `chain` records `others`: names the chain and
        who holds it, in one shape for every plugin (`kind`: "ipMasq", "hostport")."""
        who = ", ".join(sorted({f"network {o[0]!r} container {o[1]!r}" if o else "an uncommented rule"
                                for o in others}))
        return cls(f"{kind} chain {chain} of network {mine[0]!r} container {mine[1]!r} already holds the "
                   f"rules of {who} (its name hashes network and container ID run together); DEL that "
                   f"attachment first, or use another container ID")


def which(tool: str) -> str | None:
    """The tool's path on PATH (or in /usr/sbin, /sbin, which a runtime's PATH may lack).

    Only absolute directories count: an empty or relative PATH element would run a program of the
    working directory as root (Go's exec.LookPath refuses such results too)."""
    dirs = sysapi.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").split(":")
    for directory in [*dirs, "/usr/sbin", "/sbin"]:
        if not directory.startswith("/"):
            continue
        path = sysapi.join(directory, tool)
        if sysapi.isfile(path) and sysapi.access(path, sysapi.X_OK):
            return path
    return None


def tool_env() -> dict[str, str]:
    """The runtime's environment with LC_ALL=C: the tools' error text is parsed, so never translated."""
    env = child_env()
    env["LC_ALL"] = "C"
    return env


def call(argv: list[str], stdin: str | None = None, timeout: float | None = None) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of the tool argv[0]; FirewallError when it is not installed or,
    with `timeout` (seconds), still running after it (it is then killed)."""
    from cni import bounded

    path = which(argv[0])
    if path is None:
        raise FirewallError(f"{argv[0]} is not installed")
    try:
        code, out, err = bounded.run([path, *argv[1:]], None if stdin is None else stdin.encode(),
                                     tool_env(), timeout)
    except bounded.Expired as e:
        raise FirewallTimeout(str(e)) from None
    return code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def run(argv: list[str], stdin: str | None = None, what: str = "", timeout: float | None = None) -> str:
    """The tool's stdout; FirewallError naming `what` when it is missing, fails or overruns `timeout`."""
    try:
        code, out, err = call(argv, stdin, timeout)
    except FirewallError as e:
        raise type(e)(f"{what or argv[0]}: {e}") from None
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
    """Run every step; the failures are reported together at the end. A step that overran its
    bound ends the run: the call is to be tried again anyway, and the next step would likely wait
    on the same holder for as long."""
    errors: list[FirewallError] = []
    for step in steps:
        try:
            step()
        except FirewallTimeout as e:
            errors.append(e)
            break
        except FirewallError as e:
            errors.append(e)
    if errors:  # one failure, a timeout if any was: the call is then worth retrying
        timed_out = any(isinstance(e, FirewallTimeout) for e in errors)
        raise (FirewallTimeout if timed_out else FirewallError)("; ".join(map(str, errors)))


def on_both_backends(steps: dict[str, Callable[[], None]], chosen: str | None, what: str) -> None:
    """Run a removal on both backends ({"iptables": ..., "nftables": ...}): the failure of `chosen`
    (the config's backend, else the host's default) is the caller's; the other's is only logged, or a
    broken nft (a kernel without nf_tables, say) would fail an iptables attachment's DEL for ever."""
    import sys

    chosen = chosen if chosen in steps else default_backend()
    other = "iptables" if chosen == "nftables" else "nftables"
    try:
        steps[other]()
    except FirewallError as e:
        sys.stderr.write(f"ignored while removing {other} {what}: {e}\n")
    steps[chosen]()
