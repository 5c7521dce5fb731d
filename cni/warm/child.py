"""The child of one warm call (a spare, spare.py, that took it): made into the caller's process,
then the call, then _exit.

It takes the caller's descriptors, working directory, umask, environment (Python's and the C
library's) and argv, and nothing of the server's: its signal handlers and mask are the cold
path's, its other descriptors closed, the cyclic collector off as in a cold plugin call. What
it keeps of the server's process (by design; the unit sets them): rlimits, cgroup, the
scheduling priority the server was started with (not its accept loop's), capabilities. It
leads a process group of its own (made so while it was a spare): when its launcher dies (a
runtime's timeout kills the executable it ran) the kernel kills the group, the tools it runs
with it.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import io
import os
import posix
import signal
import socket
import sys
import traceback
from collections.abc import Callable
from typing import NoReturn

from . import protocol

GO_WAIT = 30.0  # the launcher sends GO at once after READY; this only bounds a vanished one


def run(conn: socket.socket, call: protocol.Call, entry: Callable[[list[str]], int],
        fault: Callable[[str], None]) -> NoReturn:
    """Never returns: exits without running anything unless the launcher commits."""
    code = 1
    committed = False
    try:
        conn.settimeout(GO_WAIT)
        fault("child-ready")
        conn.sendall(protocol.READY)
        try:  # while the launcher commits: nothing here is seen outside this process
            argv: list[str] | BaseException = _take_request(call)
        except Exception as exc:
            argv = exc
        go, fds = _commit(conn)
        if go != protocol.GO:  # the launcher went cold: this call is not ours
            os.write(2, b"pycni serve: a call went cold before its commit (its caller stopped waiting)\n")
            os._exit(0)
        committed = True
        if len(fds) != protocol.DESCRIPTORS:
            raise protocol.ProtocolError(f"{len(fds)} descriptors with the commit")
        fault("child-go")
        if isinstance(argv, BaseException):
            raise argv
        _take_descriptors(fds, conn.fileno())
        _die_with_launcher(conn.fileno())
        fault("child-running")
        code = _call(entry, argv)
    except BaseException:
        if committed:
            traceback.print_exc()
    finally:
        if committed:
            try:
                _live_on_without_launcher(conn.fileno())  # the call is over: its end kills nothing
                conn.settimeout(5.0)
                conn.sendall(protocol.status(protocol.EXITED, code))
            except OSError:
                pass  # the launcher is gone; the runtime has its answer (or its timeout)
        os._exit(code & 0xFF)


def _commit(conn: socket.socket) -> tuple[bytes, list[int]]:
    """The launcher's GO and the descriptors that come with it (b"" at its end of the line)."""
    data, ancillary, _, _ = conn.recvmsg(1, socket.CMSG_SPACE(protocol.DESCRIPTORS * 4))
    fds: list[int] = []
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.extend(int.from_bytes(payload[i:i + 4], sys.byteorder, signed=True)
                       for i in range(0, len(payload) - 3, 4))
    return data, fds


def reset_signals() -> None:
    """The cold path's handlers (CPython's defaults) and an empty mask."""
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD, signal.SIGQUIT, signal.SIGUSR1,
                signal.SIGUSR2, signal.SIGALRM):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def _take_request(call: protocol.Call) -> list[str]:
    """Become the caller, in what its request says: umask, environment, argv."""
    os.umask(call.umask)
    for key in list(posix.environ):
        os.unsetenv(key)
    posix.environ.clear()  # os.environ's own data: both now say what the caller's environ says
    for key, value in protocol.environment(call.env):
        os.putenv(key, value)
        posix.environ[key] = value
    argv = [os.fsdecode(a) for a in call.argv]
    sys.argv[:] = argv
    sys.orig_argv[:] = argv
    _name_after(call.argv[0] if call.argv else b"")
    return argv


def _name_after(argv0: bytes) -> None:
    """The process's name (comm: ps, top, perf, the audit log) is the executable's, as a cold
    call's is: `bridge`, not the warm process's `pycni`."""
    name = argv0.rpartition(b"/")[2][:15]
    if name:
        with contextlib.suppress(OSError), open("/proc/thread-self/comm", "wb", buffering=0) as comm:
            comm.write(name)


def _take_descriptors(fds: list[int], keep: int) -> None:
    """Become the caller, in what the commit carried: its stdio and cwd; nothing else open."""
    for target, fd in enumerate(fds[:3]):
        os.dup2(fd, target)
    os.fchdir(fds[3])
    os.closerange(3, keep)
    os.closerange(keep + 1, 0x7FFFFFFF)
    _stdio()
    gc.disable()


def _stdio() -> None:
    """sys.stdin, stdout, stderr on fds 0-2 as CPython makes them in the launcher's UTF-8 mode."""
    def text(fd: int, mode: str, errors: str, line: bool) -> io.TextIOWrapper:
        raw = io.FileIO(fd, mode, closefd=False)
        buffered = io.BufferedReader(raw) if mode == "r" else io.BufferedWriter(raw)
        return io.TextIOWrapper(buffered, encoding="utf-8", errors=errors, newline="\n",
                                line_buffering=line)

    streams = {"stdin": text(0, "r", "surrogateescape", False),
               "stdout": text(1, "w", "surrogateescape", os.isatty(1)),
               "stderr": text(2, "w", "backslashreplace", True)}
    for name, stream in streams.items():  # sys.__stdout__ & co. too: a cold call's are its own fds
        setattr(sys, name, stream)
        setattr(sys, f"__{name}__", stream)


def _die_with_launcher(fd: int) -> None:
    """When the launcher's end of the connection closes (a runtime killed it), the kernel kills
    this call's process group: the connection signals its hang-up (O_ASYNC) as SIGKILL (F_SETSIG)
    to the group (F_SETOWN). No thread waits for it. The launcher writes nothing after its
    commit, so the hang-up is the one event that can signal."""
    import select

    fcntl.fcntl(fd, fcntl.F_SETOWN, -os.getpgrp())
    fcntl.fcntl(fd, fcntl.F_SETSIG, signal.SIGKILL)
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) | os.O_ASYNC)
    poller = select.poll()  # a hang-up before O_ASYNC was set signals nothing: look once
    poller.register(fd, select.POLLIN | select.POLLRDHUP)
    if poller.poll(0):
        os.killpg(0, signal.SIGKILL)


def _live_on_without_launcher(fd: int) -> None:
    """Undo _die_with_launcher before the status goes out: the launcher then exits, and the
    warm process still holds this connection until it reaps the child."""
    fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_ASYNC)


def _call(entry: Callable[[list[str]], int], argv: list[str]) -> int:
    """entry(argv) as the launcher calls it: SystemExit's code, 1 and a traceback otherwise."""
    try:
        code = entry(argv)
        code = int(code) if code is not None else 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if exc.code is not None and not isinstance(exc.code, int):
            sys.stderr.write(f"{exc.code}\n")
    except BaseException:
        traceback.print_exc()
        code = 1
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    return code
