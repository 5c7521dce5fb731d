"""The nftables backend: apply an nft batch, list a table or chain as JSON, delete rules by handle."""

from __future__ import annotations

from .tools import FirewallError, call, run, which

# What nft says when the table or chain to list is not there.
_MISSING = ("No such file or directory", "does not exist")

# nft takes no lock and answers in milliseconds: a run this long is stuck (a hung netlink peer,
# a wedged kernel); it is killed and the error says so, instead of the runtime's call hanging.
NFT_TIMEOUT = 30.0
TIMEOUT_VAR = "PYCNI_NFT_TIMEOUT"


def timeout() -> float:
    """NFT_TIMEOUT, or the positive number of seconds in TIMEOUT_VAR."""
    from cni import sysapi

    return sysapi.seconds_from_env(TIMEOUT_VAR, NFT_TIMEOUT)


def available() -> bool:
    return which("nft") is not None


def quote(text: str) -> str:
    """An nft string: double quotes, with any double quote in the text dropped."""
    return '"' + text.replace('"', "") + '"'


def apply(script: str, what: str) -> None:
    """Run one batch (`nft -f -`): atomic in the kernel, all of it or nothing."""
    run(["nft", "-f", "-"], script, what, timeout())


def items_of(listing: str) -> list[dict]:
    """The objects of an `nft -j list ...` output."""
    import json  # here, not at the top: json brings re and enum, and a DEL without rules reads nothing

    try:
        return json.loads(listing).get("nftables", [])
    except ValueError as e:
        raise FirewallError(f"nft printed no JSON: {e}") from None


def listing(*what: str) -> str | None:
    """`nft -j list <what>` (e.g. "chain", "inet", table, chain); None when nft is not installed or
    that table or chain does not exist."""
    if not available():
        return None
    try:
        code, out, err = call(["nft", "-j", "list", *what], timeout=timeout())
    except FirewallError as e:
        raise type(e)(f"list {' '.join(what)}: {e}") from None
    if code != 0:
        if any(phrase in err for phrase in _MISSING):
            return None
        raise FirewallError(f"list {' '.join(what)}: nft exited {code}: {err.strip()}")
    return out


def chain_rules(family: str, table: str, chain: str) -> list[dict] | None:
    """The rules of one chain as nft's JSON objects, or None when the table or chain is missing."""
    text = listing("chain", family, table, chain)
    if text is None:
        return None
    return [item["rule"] for item in items_of(text) if "rule" in item]


def handles_with_prefix(rules: list[dict] | None, prefix: str) -> list[tuple[int, str]]:
    """(handle, comment) of the rules whose comment starts with `prefix`."""
    return [(r["handle"], r.get("comment", "")) for r in rules or []
            if str(r.get("comment", "")).startswith(prefix)]


def delete_rules(family: str, table: str, chain: str, handles: list[int], who: str) -> None:
    if handles:
        script = "".join(f"delete rule {family} {table} {chain} handle {h}\n" for h in handles)
        apply(script, f"remove rules of {who}")
