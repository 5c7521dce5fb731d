"""The netlink layer against answers that are late, lost, short, oversized or not the kernel's.

Each test failed on the layer before it was hardened: a receive blocked for ever, ENOBUFS ended a
dump, a short NLMSG_ERROR crashed with struct.error, a reply larger than the buffer failed with
EMSGSIZE, and a message another process wrote to our port was taken for the kernel's answer.
Every failure names the operation that was under way.
"""

from __future__ import annotations

import _socket
import errno
import signal
import struct

import pytest

from cni.net import link, netns
from cni.net import netlink as nl
from cni.net.netlink import Handle

from .conftest import NS

GUARD = 20  # seconds: an alarm turns a hang of the old code into a failure


@pytest.fixture
def alarm():
    def expired(*_):
        raise AssertionError("netlink call hung (no receive timeout)")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(GUARD)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def test_a_receive_without_an_answer_times_out_naming_the_operation(ns: NS, alarm, monkeypatch) -> None:
    monkeypatch.setattr(nl, "RECV_TIMEOUT", 0.3)
    with netns.entered(ns.path):
        handle = Handle()
    with handle, pytest.raises(OSError) as info:
        handle._recv("wait for nothing")  # no request sent: the kernel never answers
    assert info.value.errno == errno.ETIMEDOUT
    assert "wait for nothing" in str(info.value) and "0.3 s" in str(info.value)


def test_a_reply_larger_than_the_buffer_is_received_whole(h: Handle) -> None:
    for i in range(20):
        link.create_ifb(h, f"ifbt{i}")
    h._view.release()
    h._buf = bytearray(64)  # far smaller than one RTM_NEWLINK message
    h._view = memoryview(h._buf)
    names = {x.name for x in link.list_links(h)}
    assert {f"ifbt{i}" for i in range(20)} <= names
    assert link.get_link(h, "ifbt3") is not None  # a request's reply too


class ShortAck(Handle):
    """The kernel's acknowledgement cut to 2 bytes (a corrupt or hostile answer)."""

    def _recv(self, op: str) -> list[tuple[int, int, int, bytes]]:
        return [(t, f, s, b[:2] if t == nl.NLMSG_ERROR else b) for t, f, s, b in super()._recv(op)]


def test_a_short_error_message_is_an_error_naming_the_operation(ns: NS) -> None:
    with netns.entered(ns.path):
        handle = ShortAck()
    with handle, pytest.raises(OSError) as info:
        link.create_bridge(handle, "short0")
    assert info.value.errno == errno.EBADMSG and "create bridge short0" in str(info.value)


class Overflowing(Handle):
    """The first receive of each dump overflows (ENOBUFS: messages were lost)."""

    overflows = 0

    def _recv(self, op: str) -> list[tuple[int, int, int, bytes]]:
        if type(self).overflows > 0:
            type(self).overflows -= 1
            raise nl.error(errno.ENOBUFS, op)
        return super()._recv(op)


def test_enobufs_restarts_the_dump(ns: NS) -> None:
    with netns.entered(ns.path):
        handle = Overflowing()
    with handle:
        Overflowing.overflows = 2
        assert [x.name for x in link.list_links(handle)] == ["lo"]
        assert Overflowing.overflows == 0


def test_a_message_from_another_process_is_not_taken_for_the_kernels(h: Handle, ns: NS) -> None:
    """A forged NLMSG_ERROR (EPERM, the very sequence number of our next request) is queued on our
    port before the request; only the kernel's answer (port id 0) counts."""
    port, _groups = h._sock.getsockname()
    seq = (h._seq + 1) & 0xFFFFFFFF
    body = struct.pack("=i", -errno.EPERM) + struct.pack("=IHHII", 16, 0, 0, seq, 0)
    forged = struct.pack("=IHHII", 16 + len(body), nl.NLMSG_ERROR, 0, seq, port) + body
    with netns.entered(ns.path):  # port ids are per namespace
        sender = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW, nl.NETLINK_ROUTE)
    try:
        sender.bind((0, 0))
        sender.sendto(forged, (port, 0))
    finally:
        sender.close()
    bridge = link.create_bridge(h, "forged0")  # not refused with the forged EPERM
    assert link.get_link(h, "forged0").index == bridge.index


def test_socket_errors_name_the_operation(h: Handle) -> None:
    h._sock.close()
    with pytest.raises(OSError) as info:
        link.get_link(h, "lo")
    assert info.value.errno == errno.EBADF and "get link lo" in str(info.value)
