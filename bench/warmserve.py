"""A warm process (`pycni serve`) in the foreground on a socket of its own, for the bench and the tests.

``WarmServer(bin_dir, directory, netns=None, fault=None, extra_env=None, enter=None)``: in the
foreground with ``--socket <directory>/s --verbose``, inside the network namespace ``netns`` (a
path) when given, or through the argv prefix ``enter`` (a node's mount and network namespaces),
since it serves only callers of its own namespaces. ``env`` is what a caller's environment needs
to use it; ``served()`` counts the calls it handed to a child, ``refused()`` the ones it sent back
cold; ``stop()`` ends it (SIGTERM, then SIGKILL) and never fails. A call whose environment holds
``PYCNI_WARM_SOCKET=off`` runs cold whatever is running on the node.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

WARM_ENV = "PYCNI_WARM_SOCKET"
START_TIMEOUT = 60.0


class WarmServer:
    def __init__(self, bin_dir: Path, directory: Path, netns: str | None = None, fault: str | None = None,
                 extra_env: dict[str, str] | None = None, enter: list[str] | None = None):
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory.chmod(0o700)
        self.socket = str(directory / "s")
        self.log_path = directory / "serve.log"
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **(extra_env or {})}
        if fault:
            env["PYCNI_WARM_FAULT"] = fault
        argv = [str(bin_dir / "pycni"), "serve", "--socket", self.socket, "--verbose"]
        if netns:
            argv = ["nsenter", f"--net={netns}", "--", *argv]
        if enter:  # e.g. an emulated node's `nsenter --target PID --mount --net ... --`
            argv = [*enter, *argv]
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env,
                                         start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while "serving on" not in self.log():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"pycni serve did not start: {self.log()}")
            time.sleep(0.02)

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def env(self) -> dict[str, str]:
        """What a caller's environment needs to use this server."""
        return {WARM_ENV: self.socket}

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def served(self) -> int:
        return self.log().count(": child ")

    def refused(self) -> int:
        return self.log().count("refused a call")

    def children(self) -> list[int]:
        return [int(line.rsplit(" ", 1)[1]) for line in self.log().splitlines() if ": child " in line]

    def stop(self) -> None:
        """SIGTERM (it exits at once; children finish their calls), SIGKILL when it does not."""
        for sig in (signal.SIGCONT, signal.SIGTERM, signal.SIGKILL):  # SIGCONT: a test may have stopped it
            if self.proc.poll() is not None:
                return
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, sig)
            if sig != signal.SIGCONT:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(timeout=10)
