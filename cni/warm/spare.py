"""The spare child: forked before its call arrives, so a call finds its process already made.

Forking the warm process, and the copy-on-write faults of the child's first steps, were most of
a warm call's time when the child was forked for the call. The server keeps spares ahead
(server.SPARES, replaced between calls: Server.fork_spares). While it waits, a spare leaves the
server's world (its descriptors closed, the cold path's signal handlers, a process group of its
own) and copies the pages it shares with the server (`_pycni_prefault`, conf/prefault.h),
looking at its control socket between chunks, so a call handed over mid-copy waits for one
chunk at most. It copies only while the calls in flight leave a CPU free: in a burst (a node
starting or stopping its pods) most of what it would copy is never written by the call that
comes, and the copying would take the CPU the calls need (decided when it is forked); such a
spare's call faults in the
pages it writes, as a child forked for it would. The server hands it exactly one call over that
socket: the request it read and checked, and the caller's connection. The spare runs it as
child.run does and exits: no state passes from one call to the next. When the server is gone
(the socket's end of file) it exits.

The hand-over on the control socket: a little-endian u32 length and the request's payload, the
caller's connection as a descriptor (SCM_RIGHTS) with the first bytes.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from typing import NoReturn

from . import protocol
from .child import reset_signals, run

try:
    from _pycni_prefault import prefault  # the bundle's launcher provides it
except ImportError:  # pragma: no cover - only a launcher without it; the child faults as it goes
    prefault = None

COPY_NICE = 19  # the spare copies with what the CPUs leave over
HAND_TIMEOUT = 1.0  # the spare reads at once; one that does not is stuck: the next one is tried


class Spare:
    """The server's side of one spare: its pid and control socket."""

    __slots__ = ("pid", "control")

    def __init__(self, pid: int, control: socket.socket):
        self.pid, self.control = pid, control

    def hand(self, conn: socket.socket, payload: bytes, nice: int | None) -> None:
        """Give the spare its call; OSError when it cannot take it (gone, or not reading). A
        spare still copying runs at COPY_NICE: it is put back at the calls' priority `nice`
        first (None: the server may not raise priorities, and no spare was lowered), or it
        would finish its chunk behind every other process on its CPU while the call waits."""
        if nice is not None:
            os.setpriority(os.PRIO_PROCESS, self.pid, nice)
        data = len(payload).to_bytes(4, "little") + payload
        self.control.settimeout(HAND_TIMEOUT)
        sent = socket.send_fds(self.control, [data], [conn.fileno()])
        if sent < len(data):
            self.control.sendall(data[sent:])

    def close(self) -> None:
        self.control.close()


def fork(entry: Callable[[list[str]], int], fault: Callable[[str], None], nice: int,
         copy: bool, lower: bool) -> Spare:
    """Fork a spare from the server; it waits for its call (wait never returns) at `nice`, the
    priority the server was started with (the server's own loop runs above it), and copies its
    pages first when `copy` says the CPUs have room for it: at COPY_NICE when `lower` says the
    server may raise it back (CAP_SYS_NICE), else at `nice`."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:
        wait(theirs.fileno(), entry, fault, nice, copy, lower)
    theirs.close()
    return Spare(pid, ours)


def wait(control: int, entry: Callable[[list[str]], int], fault: Callable[[str], None],
         nice: int, copy: bool, lower: bool) -> NoReturn:
    """The spare's life: leave the server's world, copy its pages, take one call and run it."""
    try:
        os.setpgid(0, 0)
        reset_signals()
        os.closerange(3, control)  # the listener, the server's pipes, other calls' connections
        os.closerange(control + 1, 0x7FFFFFFF)
        if copy and prefault is not None:
            if lower:
                os.setpriority(os.PRIO_PROCESS, 0, COPY_NICE)  # the call running now goes first
            prefault(control)
            if lower:
                os.setpriority(os.PRIO_PROCESS, 0, nice)
        conn, payload = _receive(socket.socket(fileno=control))
        if conn is None:
            os._exit(0)  # the server is gone
        call = protocol.parse_call(payload)
    except BaseException:
        os._exit(1)  # before a call is ours nothing is answered: the launcher's bound runs cold
    run(conn, call, entry, fault)


def _receive(control: socket.socket) -> tuple[socket.socket | None, bytes]:
    """The call the server handed over: (connection, payload), or (None, b"") at end of file."""
    data, fds, _, _ = socket.recv_fds(control, 1 << 16, 1)
    if not data:
        return None, b""
    if len(fds) != 1 or len(data) < 4:
        raise protocol.ProtocolError("a hand-over without its connection")
    length = int.from_bytes(data[:4], "little")
    if length > protocol.MAX_PAYLOAD:
        raise protocol.ProtocolError(f"a hand-over of {length} bytes")
    parts, have = [data[4:]], len(data) - 4
    while have < length:
        chunk = control.recv(min(length - have, 1 << 16))
        if not chunk:
            raise protocol.ProtocolError("the hand-over ended early")
        parts.append(chunk)
        have += len(chunk)
    control.close()
    os.set_inheritable(fds[0], False)  # no tool the plugin runs may hold the caller's connection
    return socket.socket(fileno=fds[0]), b"".join(parts)
