"""Names made from a hash, as the reference plugins make them (chains, IFB devices, nft keys)."""

from __future__ import annotations

try:  # at import, so the bundle's build sees it loaded and serves it as a built-in (conf/freeze.py)
    from _sha512 import sha512
except ImportError:  # a Python whose hashes are elsewhere (3.12 has _sha2)
    from hashlib import sha512


def hashed_name(prefix: str, text: str, length: int) -> str:
    """(prefix + hex(sha512(text)))[:length]: the reference's MustFormatHashWithPrefix.

    The digest comes from `_sha512` itself: `hashlib` would load every algorithm it offers (and
    OpenSSL's, where Python has it) on each call that names an IFB device or a chain.
    """
    return (prefix + sha512(text.encode("utf-8", "surrogateescape")).hexdigest())[:length]
