"""Run a program with a bound on the wait: on expiry its whole process group is killed.

subprocess.run's own timeout kills only the direct child and then waits for its pipes to close,
which a grandchild left running (a shell script's `sleep`, a daemon a plugin forks) may never do.
The program starts in a session of its own, so everything it started goes with it.
"""

from __future__ import annotations

import signal
import subprocess

from cni import sysapi

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping


class Expired(Exception):
    """The program was still running (or holding its output open) when the bound expired."""


def run(argv: list[str], stdin: bytes | None, env: Mapping[str, str], timeout: float | None,
        capture_stderr: bool = True) -> tuple[int, bytes, bytes]:
    """(exit code, stdout, stderr) of argv; Expired after `timeout` seconds (None: no bound).
    Without `capture_stderr` the program's stderr goes to ours (a delegate's log)."""
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE if capture_stderr else None, env=dict(env),
                            start_new_session=True)
    try:
        out, err = proc.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        try:  # noqa: SIM105 (no contextlib: cni/__init__.py)
            sysapi.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass  # the group is gone already
        proc.wait()
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
        raise Expired(f"{argv[0]} did not finish within {timeout:g} s (killed)") from None
    return proc.returncode, out, err or b""
