"""host-local's store on disk, as the reference plugin lays it out (the two share directories).

`<dataDir>/<network>/` holds one file per reserved address, named by the address (`10.1.2.3`,
`2001:db8::5`), holding `<containerID>\\r\\n<ifname>` (no trailing newline; files of plugins before
v0.8 hold only the container ID); `last_reserved_ip.<N>`, the address last handed out from range
set N, bare; and `lock`, an empty file whose flock serialises every change. Temporary files (a
reservation's content before it is linked under the address) are named so that no reader ever
takes one for a reservation. `ipam.store` writes and reads through here, and so does the operator's
`pycni status`/`gc`.
"""

from __future__ import annotations

from cni import addrtext

LOCK_NAME = "lock"
LAST_PREFIX = "last_reserved_ip."
TMP_PREFIX = ".tmp-"
SEPARATOR = b"\r\n"

_ADDRESS_CHARS = frozenset("0123456789abcdefABCDEF.:")


def last_reserved_name(range_index: int) -> str:
    """The file recording the address last handed out from range set `range_index`."""
    return f"{LAST_PREFIX}{range_index}"


def temp_name(pid: int, token: str) -> str:
    """A temporary file's name: starts with a dot, so it never parses as an address."""
    return f"{TMP_PREFIX}{pid}-{token}"


def is_temp_name(name: str) -> bool:
    return name.startswith(TMP_PREFIX)


def is_address_name(name: str) -> bool:
    """True for a file name that is an IP address (a reservation); bookkeeping files never are.

    `lock`, `last_reserved_ip.N` and names in canonical text are told apart without `ipaddress`
    (milliseconds of start-up); only other names of address characters are left to it.
    """
    if not name or name[0] == "." or not _ADDRESS_CHARS.issuperset(name):
        return False
    if addrtext.parse_ip(name) is not None:
        return True
    import ipaddress

    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def content_for(container_id: str, ifname: str) -> bytes:
    """What a reservation file holds for an attachment."""
    # Names the environment gave that are not UTF-8 come as surrogate escapes: written back as the
    # very bytes, which is what the reference plugin stores for them.
    return container_id.strip().encode() + SEPARATOR + ifname.encode("utf-8", "surrogateescape")


def legacy_content_for(container_id: str) -> bytes:
    """What a reservation file of the older format (container ID only) holds."""
    return container_id.strip().encode()


def owner_of(data: bytes, errors: str = "surrogateescape") -> tuple[str, str | None]:
    """(container ID, ifname) a reservation file's content names; ifname None for the older format.
    `errors` says how bytes that are not UTF-8 are decoded (`replace` for text shown to people)."""
    text = data.strip().decode("utf-8", errors)
    cid, sep, ifname = text.partition(SEPARATOR.decode())
    return cid.strip(), (ifname.strip() if sep else None)


def is_bookkeeping_name(name: str) -> bool:
    """True for the store's own files, `lock` and `last_reserved_ip.<N>` (never a reservation)."""
    if name == LOCK_NAME:
        return True
    index = name[len(LAST_PREFIX):] if name.startswith(LAST_PREFIX) else ""
    return index.isascii() and index.isdigit()
