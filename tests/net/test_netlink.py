"""Framing, attributes, errors, dump retries and socket hygiene of cni.net.netlink."""

from __future__ import annotations

import errno
import struct

import pytest

from cni.net import link, netns
from cni.net import netlink as nl
from cni.net.netlink import Handle

from .conftest import NS, open_fds


def test_attr_roundtrip_and_padding() -> None:
    u16 = struct.pack("=H", 0x1234)
    data = nl.attr_str(3, "eth0") + nl.attr_u8(7, 1) + nl.attr(8, u16) + nl.attr_u32(9, 7)
    data += nl.attr_u64(10, 1 << 40) + nl.nest(11, nl.attr_u32(1, 5), nl.attr_u32(1, 6), flag=True)
    assert len(data) % 4 == 0
    pairs = nl.iter_attrs(data)
    assert [t for t, _ in pairs] == [3, 7, 8, 9, 10, 11]  # NLA_F_NESTED masked off
    a = dict(pairs)
    assert nl.cstr(a[3]) == "eth0"
    assert a[7] == b"\x01" and a[8] == u16 and nl.u32(a[9]) == 7 and nl.u64(a[10]) == 1 << 40
    assert [nl.u32(v) for _, v in nl.iter_attrs(a[11])] == [5, 6]  # repeats kept
    assert nl.u32(nl.parse_attrs(a[11])[1]) == 6  # last one wins
    # A raw nlattr: length 9 ("eth0" + NUL) padded to 12.
    assert nl.attr_str(3, "eth0") == struct.pack("=HH", 9, 3) + b"eth0\0" + b"\0\0\0"


def test_truncated_attributes_are_ignored() -> None:
    good = nl.attr_u32(1, 1)
    assert nl.iter_attrs(good + struct.pack("=HH", 40, 2) + b"xx") == [(1, good[4:])]


def test_error_maps_errno_to_os_subclasses() -> None:
    err = nl.error(errno.EEXIST, "create bridge cni0", "kernel says so")
    assert isinstance(err, FileExistsError) and err.errno == errno.EEXIST
    assert str(err) == "[Errno 17] create bridge cni0: File exists (kernel says so)"
    assert isinstance(nl.error(errno.ENOENT, "x"), FileNotFoundError)
    enodev = nl.error(errno.ENODEV, "x")
    assert type(enodev) is OSError and enodev.errno == errno.ENODEV


def test_kernel_errors_carry_errno_and_operation(h: Handle) -> None:
    with pytest.raises(OSError) as info:
        link.delete_link(h, 424242)
    assert info.value.errno == errno.ENODEV
    assert "delete link 424242" in str(info.value)
    link.create_bridge(h, "dup0")
    with pytest.raises(FileExistsError) as exists:
        link.create_bridge(h, "dup0")
    assert exists.value.errno == errno.EEXIST and "create bridge dup0" in str(exists.value)


def test_extended_ack_text_is_included(h: Handle) -> None:
    veth = link.create_veth(h, "vm0", "vm1")
    with pytest.raises(OSError) as info:
        link.set_link(h, veth.index, mtu=10)  # below the minimum: the kernel explains why
    assert info.value.errno == errno.EINVAL
    assert (
        str(info.value)
        == f"[Errno 22] set link {veth.index}: Invalid argument (mtu less than device minimum)"
    )


class FlakyHandle(Handle):
    """Marks the first `bad` dumps as interrupted and injects a stray message."""

    bad = 0
    dumps = 0

    def _send(self, msg_type: int, flags: int, body: bytes, op: str) -> int:
        if flags & nl.NLM_F_DUMP == nl.NLM_F_DUMP:
            type(self).dumps += 1
        return super()._send(msg_type, flags, body, op)

    def _recv(self, op: str) -> list[tuple[int, int, int, bytes]]:
        msgs = super()._recv(op)
        out = [(link.RTM_NEWLINK, 0, 12345, b"\0" * 16)]  # wrong sequence number: must be skipped
        for t, f, s, b in msgs:
            if type(self).dumps <= type(self).bad:
                f |= nl.NLM_F_DUMP_INTR
            out.append((t, f, s, b))
        return out


def test_dump_is_retried_while_interrupted(ns: NS) -> None:
    with netns.entered(ns.path):
        handle = FlakyHandle()
    with handle:
        FlakyHandle.bad, FlakyHandle.dumps = 3, 0
        links = link.list_links(handle)
        assert [x.name for x in links] == ["lo"]
        assert FlakyHandle.dumps == 4
        # A plain request still works and ignores the stray message.
        assert link.get_link(handle, "lo") is not None


def test_dump_gives_up_with_eintr(ns: NS) -> None:
    with netns.entered(ns.path):
        handle = FlakyHandle()
    with handle:
        FlakyHandle.bad, FlakyHandle.dumps = 100, 0
        with pytest.raises(OSError) as info:
            link.list_links(handle)
        assert info.value.errno == errno.EINTR and "list links" in str(info.value)
        assert FlakyHandle.dumps == nl.DUMP_RETRIES


def test_sequence_numbers_advance(h: Handle) -> None:
    first = h._seq
    link.get_link(h, "lo")
    link.list_links(h)
    assert h._seq == first + 2


def test_sockets_are_closed(ns: NS) -> None:
    before = open_fds()
    for _ in range(20):
        with netns.open_handle(ns.path) as handle:
            link.list_links(handle)
    with pytest.raises(FileNotFoundError):
        netns.open_handle("/var/run/netns/pycni-t-does-not-exist")
    with netns.entered(ns.path):
        pass
    assert open_fds() == before


def test_large_dump_spans_many_datagrams(h: Handle, ns: NS) -> None:
    for i in range(150):
        link.create_ifb(h, f"ifbx{i}")
    names = {x.name for x in link.list_links(h)}
    assert {f"ifbx{i}" for i in range(150)} <= names
    assert len(ns.json("ip", "-j", "link", "show")) == len(names)


def test_dump_errors_carry_the_kernel_text(h: Handle) -> None:
    with pytest.raises(OSError) as info:
        h.dump(link.RTM_GETLINK, nl.ifinfo(5), "list links")  # strict dumps refuse an index
    assert info.value.errno == errno.EINVAL
    assert str(info.value) == (
        "[Errno 22] list links: Invalid argument (Filter by device index not supported for link dumps)"
    )
    assert [x.name for x in link.list_links(h)] == ["lo"]  # the handle is still usable
