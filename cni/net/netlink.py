"""rtnetlink over a raw AF_NETLINK socket: framing, attributes, requests, dumps, errors.

Only `_socket` and `struct` are imported: the `socket` module drags in `enum` and costs
several milliseconds per plugin start.  Every request waits for the kernel's answer (an
ACK or the end of a dump), so a `Handle` never has more than one request in flight.
"""

from __future__ import annotations

import _socket
import errno
import struct

from cni import sysapi

AF_UNSPEC = 0
AF_INET = 2
AF_BRIDGE = 7
AF_INET6 = 10

NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11
NETLINK_GET_STRICT_CHK = 12

NLMSG_ERROR = 2
NLMSG_DONE = 3

NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_DUMP_INTR = 0x10
NLM_F_DUMP = 0x300
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_CAPPED = 0x100
NLM_F_ACK_TLVS = 0x200

NLA_F_NESTED = 0x8000
NLA_TYPE_MASK = 0x3FFF
NLMSGERR_ATTR_MSG = 1

DUMP_RETRIES = 10
RECV_TIMEOUT = 30.0  # seconds; the kernel answers in milliseconds, even with the RTNL lock contended

_HDR = struct.Struct("=IHHII")  # nlmsghdr: len, type, flags, seq, pid
IFINFO = struct.Struct("=BxHiII")  # ifinfomsg: family, type, index, flags, change
_NLA = struct.Struct("=HH")  # nlattr: len, type
_U8 = struct.Struct("=B")
_U32 = struct.Struct("=I")
_S32 = struct.Struct("=i")
_U64 = struct.Struct("=Q")

# --- attributes -------------------------------------------------------------------------


def attr(kind: int, payload: bytes = b"") -> bytes:
    """One attribute (type-length-value), padded to 4 bytes."""
    size = _NLA.size + len(payload)
    return _NLA.pack(size, kind) + payload + b"\0" * (-size & 3)


def attr_u8(kind: int, value: int) -> bytes:
    return attr(kind, _U8.pack(value))


def attr_u32(kind: int, value: int) -> bytes:
    return attr(kind, _U32.pack(value))


def attr_u64(kind: int, value: int) -> bytes:
    return attr(kind, _U64.pack(value))


def attr_str(kind: int, value: str) -> bytes:
    """A NUL-terminated string attribute (interface names, kinds). A name that came from the
    environment as bytes that are not UTF-8 (surrogate escapes) goes back as those very bytes."""
    return attr(kind, value.encode("utf-8", "surrogateescape") + b"\0")


def nest(kind: int, *children: bytes, flag: bool = False) -> bytes:
    """A nested attribute; `flag` sets NLA_F_NESTED where the kernel looks at it."""
    return attr(kind | (NLA_F_NESTED if flag else 0), b"".join(children))


def iter_attrs(data: bytes, offset: int = 0) -> list[tuple[int, bytes]]:
    """(type, payload) pairs in order, repeats kept (bridge VLAN lists, tc actions)."""
    out = []
    end = len(data)
    while offset + 4 <= end:
        size, kind = _NLA.unpack_from(data, offset)
        if size < 4 or offset + size > end:
            break
        out.append((kind & NLA_TYPE_MASK, data[offset + 4 : offset + size]))
        offset += (size + 3) & ~3
    return out


def parse_attrs(data: bytes, offset: int = 0) -> dict[int, bytes]:
    """type -> payload; the last one wins when a type repeats."""
    return dict(iter_attrs(data, offset))


def u32(data: bytes) -> int:
    return _U32.unpack_from(data)[0]


def s32(data: bytes) -> int:
    return _S32.unpack_from(data)[0]


def u64(data: bytes) -> int:
    return _U64.unpack_from(data)[0]


def cstr(data: bytes) -> str:
    return data.split(b"\0", 1)[0].decode(errors="replace")


def ifinfo(index: int = 0, family: int = AF_UNSPEC, flags: int = 0, change: int = 0) -> bytes:
    """The ifinfomsg header of every link request (links and bridge ports)."""
    return IFINFO.pack(family, 0, index, flags, change)


def family_of(version: int) -> int:
    """The address family of an IP version (4 or 6)."""
    return AF_INET if version == 4 else AF_INET6


def family_filter(family: int | None) -> int:
    """A dump's family from 4, 6, AF_INET, AF_INET6 or None (both)."""
    if family is None:
        return AF_UNSPEC
    return {4: AF_INET, 6: AF_INET6}.get(family, family)


# --- errors ---------------------------------------------------------------------------


def error(code: int, op: str, detail: str = "") -> OSError:
    """An OSError carrying `code`; `OSError(EEXIST, ...)` comes back as FileExistsError etc."""
    text = f"{op}: {sysapi.strerror(code)}"
    if detail:
        text += f" ({detail})"
    return OSError(code, text)


def _ext_ack(msg_type: int, msg_flags: int, body: bytes) -> str:
    """The kernel's extended-ACK text, if it sent one."""
    if not msg_flags & NLM_F_ACK_TLVS:
        return ""
    if msg_type == NLMSG_DONE:
        start = 4  # the end of a dump carries only the error code before its TLVs
    elif len(body) >= 4 + _HDR.size:
        # The echoed request is only its header when capped (NETLINK_CAP_ACK), else whole.
        start = 4 + (_HDR.size if msg_flags & NLM_F_CAPPED else _HDR.unpack_from(body, 4)[0])
    else:
        return ""
    text = parse_attrs(body, start).get(NLMSGERR_ATTR_MSG)
    return cstr(text) if text else ""


# --- socket ---------------------------------------------------------------------------


class Handle:
    """A NETLINK_ROUTE socket (or another netlink protocol: `cni.net.conntrack` opens
    NETLINK_NETFILTER), bound to the network namespace it was created in.

    Use as a context manager, or call `close()`.  `request` and `dump` are the only two
    ways to talk to the kernel; `cni.net.link` and `cni.net.tc` build on them.
    """

    __slots__ = ("_buf", "_seq", "_sock", "_view")

    def __init__(self, protocol: int = NETLINK_ROUTE) -> None:
        sock = _socket.socket(_socket.AF_NETLINK, _socket.SOCK_RAW | _socket.SOCK_CLOEXEC, protocol)
        try:
            for opt in (NETLINK_EXT_ACK, NETLINK_CAP_ACK, NETLINK_GET_STRICT_CHK):
                try:  # noqa: SIM105 (no contextlib: cni/__init__.py)
                    sock.setsockopt(SOL_NETLINK, opt, 1)
                except OSError:
                    pass  # older kernels: plain errors, unfiltered dumps
            sock.bind((0, 0))
            sock.settimeout(RECV_TIMEOUT)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._seq = int.from_bytes(sysapi.urandom(2), "little") << 8
        self._buf = bytearray(1 << 16)
        self._view = memoryview(self._buf)

    def close(self) -> None:
        self._view.release()
        self._sock.close()

    def __enter__(self) -> Handle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def fileno(self) -> int:
        return self._sock.fileno()

    def _send(self, msg_type: int, flags: int, body: bytes, op: str) -> int:
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        try:
            self._sock.send(_HDR.pack(_HDR.size + len(body), msg_type, flags, self._seq, 0) + body)
        except TimeoutError:
            raise error(errno.ETIMEDOUT, op, f"the kernel took no request for {RECV_TIMEOUT:g} s") from None
        except OSError as e:
            raise error(e.errno or errno.EIO, op, "sending the request") from None
        return self._seq

    def _recv(self, op: str) -> list[tuple[int, int, int, bytes]]:
        """One datagram from the kernel as (type, flags, seq, body) messages.

        The datagram's size is peeked first and the buffer grown to it, so a long answer is
        never cut short. OSError naming `op`: no answer within RECV_TIMEOUT, or ENOBUFS (the
        socket overflowed and messages were lost; `dump` starts again on it).
        """
        while True:
            try:
                size = self._sock.recv_into(self._buf, 0, _socket.MSG_PEEK | _socket.MSG_TRUNC)
                if size > len(self._buf):
                    self._view.release()
                    self._buf = bytearray(size + 4096)
                    self._view = memoryview(self._buf)
                    continue
                size, (sender, _groups) = self._sock.recvfrom_into(self._buf, 0)  # EINTR: retried
                if sender == 0:
                    break
                # Not from the kernel (port id 0): another process wrote to our port; not an answer.
            except TimeoutError:
                raise error(errno.ETIMEDOUT, op, f"no answer within {RECV_TIMEOUT:g} s") from None
            except OSError as e:
                raise error(e.errno or errno.EIO, op, "reading the kernel's answer") from None
        data = bytes(self._view[:size])
        out = []
        offset = 0
        while offset + _HDR.size <= size:
            length, msg_type, flags, seq, _pid = _HDR.unpack_from(data, offset)
            if length < _HDR.size or offset + length > size:
                break
            out.append((msg_type, flags, seq, data[offset + _HDR.size : offset + length]))
            offset += (length + 3) & ~3
        return out

    def request(self, msg_type: int, body: bytes, op: str, flags: int = 0) -> list[tuple[int, bytes]]:
        """Send one request and wait for its ACK; returns the (type, body) replies before it.

        Raises OSError(errno, "<op>: <strerror> (<kernel message>)") on a negative ACK, and names
        `op` on every other failure too (a timeout, lost or malformed answers).
        """
        seq = self._send(msg_type, NLM_F_REQUEST | NLM_F_ACK | flags, body, op)
        replies: list[tuple[int, bytes]] = []
        while True:
            for r_type, r_flags, r_seq, r_body in self._recv(op):
                if r_seq != seq:
                    continue  # late answer to an earlier request: not ours
                if r_type == NLMSG_ERROR:
                    if len(r_body) < 4:
                        raise error(errno.EBADMSG, op, "the kernel's acknowledgement is too short")
                    code = -_S32.unpack_from(r_body)[0]
                    if code:
                        raise error(code, op, _ext_ack(r_type, r_flags, r_body))
                    return replies
                if r_type == NLMSG_DONE:
                    return replies
                replies.append((r_type, r_body))

    def dump(self, msg_type: int, body: bytes, op: str) -> list[tuple[int, bytes]]:
        """A complete, consistent dump: restarted while the kernel flags NLM_F_DUMP_INTR."""
        for _ in range(DUMP_RETRIES):
            seq = self._send(msg_type, NLM_F_REQUEST | NLM_F_DUMP, body, op)
            replies: list[tuple[int, bytes]] = []
            interrupted = False
            done = False
            while not done:
                try:
                    messages = self._recv(op)
                except OSError as e:
                    if e.errno != errno.ENOBUFS:
                        raise
                    self._drain()
                    interrupted = True  # parts of the dump were lost: start it again
                    break
                for r_type, r_flags, r_seq, r_body in messages:
                    if r_seq != seq:
                        continue
                    interrupted |= bool(r_flags & NLM_F_DUMP_INTR)
                    if r_type in (NLMSG_DONE, NLMSG_ERROR):
                        code = -_S32.unpack_from(r_body)[0] if len(r_body) >= 4 else 0
                        if code:
                            raise error(code, op, _ext_ack(r_type, r_flags, r_body))
                        done = True
                        break
                    replies.append((r_type, r_body))
            if not interrupted:
                return replies
        raise error(errno.EINTR, op, f"dump still inconsistent after {DUMP_RETRIES} attempts")

    def _drain(self) -> None:
        """Drop whatever is queued on the socket (the rest of a dump that lost messages)."""
        self._sock.settimeout(0)
        try:
            while True:
                self._sock.recv_into(self._buf, 0)
        except OSError:
            pass  # BlockingIOError: empty
        finally:
            self._sock.settimeout(RECV_TIMEOUT)
