"""Whether an nf_tables table or chain exists: one NETLINK_NETFILTER request each, no tool started.

A DEL asks this before it reads a whole table with iptables-save or nft: those cost a process
start and a dump of every rule, four of them per pod in portmap's DEL, and most pods have no
rule at all. iptables-nft keeps each iptables chain as an nf_tables chain of the same name in a
table named after the iptables table (`ip nat`, `ip6 nat`), so the question covers that backend
too; rules of iptables-legacy are not in nf_tables, and its callers do not ask.
"""

from __future__ import annotations

import errno
import struct

from . import netlink as nl

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFT_MSG_GETTABLE = 1
NFT_MSG_GETCHAIN = 4
NFTA_TABLE_NAME = 1
NFTA_CHAIN_TABLE = 1
NFTA_CHAIN_NAME = 3
NFPROTO = {"ip": 2, "ip6": 10, "inet": 1}

_NFGEN = struct.Struct("=BBH")  # nfgenmsg: family, version, res_id (big endian; 0)


class Probe:
    """One NETLINK_NETFILTER socket for a few questions; a context manager. OSError when nf_tables
    cannot be asked at all (no module, no permission): the caller then reads the tables as before."""

    __slots__ = ("_h",)

    def __init__(self) -> None:
        self._h = nl.Handle(NETLINK_NETFILTER)

    def __enter__(self) -> Probe:
        return self

    def __exit__(self, *exc: object) -> None:
        self._h.close()

    def _exists(self, msg: int, family: str, attrs: bytes, what: str) -> bool:
        body = _NFGEN.pack(NFPROTO[family], 0, 0) + attrs
        try:
            self._h.request((NFNL_SUBSYS_NFTABLES << 8) | msg, body, f"look up {what}")
        except OSError as e:
            if e.errno == errno.ENOENT:
                return False
            raise
        return True

    def table(self, family: str, table: str) -> bool:
        return self._exists(NFT_MSG_GETTABLE, family, nl.attr_str(NFTA_TABLE_NAME, table),
                            f"nf_tables table {family} {table}")

    def chain(self, family: str, table: str, chain: str) -> bool:
        attrs = nl.attr_str(NFTA_CHAIN_TABLE, table) + nl.attr_str(NFTA_CHAIN_NAME, chain)
        return self._exists(NFT_MSG_GETCHAIN, family, attrs, f"nf_tables chain {family} {table} {chain}")
