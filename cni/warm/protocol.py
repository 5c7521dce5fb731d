"""The warm path's wire format, read and written without touching a socket.

The launcher (conf/warm.h) sends one request: a 12-byte header (MAGIC, the kind, the payload's
length as a little-endian u32), then the payload: NUL-terminated fields, the build id, the umask
in octal, argc, the arguments, then every environment entry. A ping (kind PING, empty payload)
asks a server for its build id (`pycni status`).
Answers are one byte: REFUSED (run it cold) or READY (a child waits for the commit). The commit
is GO, one byte carrying the caller's stdin, stdout, stderr and working directory as descriptors
(SCM_RIGHTS). Then the 5-byte status: EXITED or SIGNALLED with a little-endian i32.
"""

from __future__ import annotations

MAGIC = b"PYCNIW1"
HEADER = 12
MAX_PAYLOAD = 4 << 20  # the launcher's WARM_MAX_PAYLOAD
CALL, PING = b"C", b"P"
REFUSED, READY, GO, EXITED, SIGNALLED = b"R", b"A", b"G", b"X", b"S"
DEFAULT_SOCKET = "/run/pycni/warm.sock"  # the launcher's WARM_DEFAULT_SOCKET


class ProtocolError(ValueError):
    """A request that is not the launcher's: refused, the caller runs cold."""


class Call:
    """One call as the launcher sent it (bytes, as the kernel gave them to the launcher)."""

    __slots__ = ("build_id", "umask", "argv", "env")

    def __init__(self, build_id: bytes, umask: int, argv: list[bytes], env: list[bytes]):
        self.build_id, self.umask, self.argv, self.env = build_id, umask, argv, env


def parse_header(data: bytes) -> tuple[bytes, int]:
    """(kind, payload length) of a request's header."""
    if len(data) != HEADER or data[:7] != MAGIC or data[7:8] not in (CALL, PING):
        raise ProtocolError("not a pycni warm request")
    length = int.from_bytes(data[8:12], "little")
    if length > MAX_PAYLOAD or (data[7:8] == PING and length):
        raise ProtocolError(f"a payload of {length} bytes")
    return data[7:8], length


def parse_call(payload: bytes) -> Call:
    """The fields of a call's payload."""
    if not payload.endswith(b"\0"):
        raise ProtocolError("the payload does not end with a NUL")
    fields = payload[:-1].split(b"\0")
    if len(fields) < 3:
        raise ProtocolError("too few fields")
    build_id, umask, argc = fields[:3]
    try:
        mask, count = int(umask, 8), int(argc)
    except ValueError:
        raise ProtocolError("umask or argc is not a number") from None
    if not 0 <= mask <= 0o777 or not 0 <= count <= len(fields) - 3:
        raise ProtocolError("umask or argc out of range")
    return Call(build_id, mask, fields[3:3 + count], fields[3 + count:])


def encode_call(call: Call) -> bytes:
    """Header and payload of a call, as the launcher writes them (the tests' own client)."""
    fields = [call.build_id, b"%o" % call.umask, b"%d" % len(call.argv), *call.argv, *call.env]
    payload = b"".join(f + b"\0" for f in fields)
    return MAGIC + CALL + len(payload).to_bytes(4, "little") + payload


DESCRIPTORS = 4  # stdin, stdout, stderr, cwd: with GO


def ping() -> bytes:
    return MAGIC + PING + bytes(4)


def status(kind: bytes, value: int) -> bytes:
    """EXITED with an exit code, or SIGNALLED with a signal number."""
    return kind + value.to_bytes(4, "little", signed=True)


def parse_status(data: bytes) -> tuple[bytes, int]:
    if len(data) != 5 or data[:1] not in (EXITED, SIGNALLED):
        raise ProtocolError("not an exit status")
    return data[:1], int.from_bytes(data[1:], "little", signed=True)


def environment(entries: list[bytes]) -> list[tuple[bytes, bytes]]:
    """The caller's environment as (key, value) pairs, as getenv(3) reads its entries: the first
    of a name wins; an entry without "=" or with an empty name names nothing."""
    seen: set[bytes] = set()
    out = []
    for entry in entries:
        key, sep, value = entry.partition(b"=")
        if sep and key and key not in seen:
            seen.add(key)
            out.append((key, value))
    return out
