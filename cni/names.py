"""Names made from a hash, as the reference plugins make them (chains, IFB devices, nft keys)."""

from __future__ import annotations


def hashed_name(prefix: str, text: str, length: int) -> str:
    """(prefix + hex(sha512(text)))[:length]: the reference's MustFormatHashWithPrefix.

    hashlib is imported here, not at module level: the plain ADD path names nothing by hash.
    """
    import hashlib

    return (prefix + hashlib.sha512(text.encode("utf-8", "surrogateescape")).hexdigest())[:length]
