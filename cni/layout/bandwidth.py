"""bandwidth's IFB devices on the host: their names and the tag that records whose each one is.

An attachment's IFB is `bwp` + sha512(network + container ID), 15 characters, as the reference names
it, so either implementation's DEL finds the other's device. That hash runs network and container ID
together, so (`X1`, `abc`) and (`X`, `1abc`) share a name: the alias pycni sets on its IFBs
(IFLA_IFALIAS) `pycni-bandwidth network=<name> container=<id>` says whose it is. The reference sets
none, so an untagged IFB is the reference's, whose owner cannot be told.
"""

from __future__ import annotations

from cni.names import hashed_name
from cni.record import Record

IFB_PREFIX = "bwp"
IFB_TEMP_PREFIX = "bwt"  # the same IFB before it carries its tag (see ifb_temp_name)
IFB_NAME_LEN = 15
IFB_TAG = "pycni-bandwidth"
IFALIAS_MAX = 255  # bytes; IFALIASZ - 1


class Tag(Record):
    """What an IFB's alias records: its network and, when it fitted, its container ID (a Record:
    `typing` would cost every bandwidth call its imports)."""

    __slots__ = ("network", "container_id")
    network: str
    container_id: str | None


def ifb_name(network: str, container_id: str) -> str:
    """The IFB device of one attachment: "bwp" + sha512(network + container ID), 15 characters."""
    return hashed_name(IFB_PREFIX, network + container_id, IFB_NAME_LEN)


def ifb_temp_name(network: str, container_id: str) -> str:
    """The name an IFB has for the instant before it is tagged: "bwt" + the same hash, so that the
    attachment's DEL also finds it if ADD was killed in that instant."""
    return IFB_TEMP_PREFIX + ifb_name(network, container_id)[len(IFB_PREFIX):]


def is_ifb_name(name: str) -> bool:
    """True for a name `ifb_name` or `ifb_temp_name` can make."""
    return len(name) == IFB_NAME_LEN and name.startswith((IFB_PREFIX, IFB_TEMP_PREFIX))


def ifb_alias(network: str, container_id: str) -> str | None:
    """The tag for an attachment's IFB: "pycni-bandwidth network=<name> container=<id>".

    Network names and container IDs have no spaces (libcni's rule), so the fields split on them.
    The container is left out if the whole does not fit the kernel's 255 bytes; None (an untagged
    IFB, treated as the reference plugin's) if even the network alone does not.
    """
    for alias in (f"{IFB_TAG} network={network} container={container_id}", f"{IFB_TAG} network={network}"):
        if len(alias.encode()) <= IFALIAS_MAX:
            return alias
    return None


def parse_alias(alias: str | None) -> Tag | None:
    """The owner an IFB's alias records if it is one of our tags, else None."""
    fields = (alias or "").split(" ")
    if fields[0] != IFB_TAG:
        return None
    values = dict(f.split("=", 1) for f in fields[1:] if "=" in f)
    if "network" not in values:
        return None
    return Tag(values["network"], values.get("container"))


def owned_by(alias: str | None, network: str, container_id: str) -> bool | None:
    """Whether an IFB with this alias is (network, container ID)'s: True, False (the tag names
    another attachment), or None (untagged: the reference's, whose owner it does not record)."""
    tag = parse_alias(alias)
    if tag is None:
        return None
    return tag.network == network and tag.container_id in (None, container_id)
