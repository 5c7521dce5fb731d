"""The iptables backend: read a table with iptables-save, change it with one iptables-restore batch.

One batch per change is atomic in the kernel. The `*_script` functions are pure (save output in,
batch out); `save`, `restore` and what builds on them run the tools, for IPv4 (iptables) and
IPv6 (ip6tables) alike.
"""

from __future__ import annotations

import sys

from cni import sysapi
from cni.layout import iptables_save
from cni.layout.iptables_save import quote  # noqa: F401  (the batches' quoting is the layout's)

from .tools import FirewallError, FirewallTimeout, every, run, which

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from cni.layout.iptables_save import Rule

SAVE = {4: "iptables-save", 6: "ip6tables-save"}
RESTORE = {4: "iptables-restore", 6: "ip6tables-restore"}

# What iptables says when a family's nat table cannot exist on this host at all.
_NO_NAT_TABLE = ("address family not supported", "table does not exist", "can't initialize",
                 "cannot initialize", "unable to initialize table", "protocol not supported")
# How long one iptables-restore waits for the xtables lock (held by kube-proxy, firewalld, another
# plugin...). Unbounded, a wedged holder would hang every ADD and DEL of the node; bounded, the call
# fails, ADD undoes what it did and the runtime retries.
XTABLES_WAIT_SECONDS = 10
_LOCK_BUSY = "holding the xtables lock"


def available(family: int) -> bool:
    return which(SAVE[family]) is not None and which(RESTORE[family]) is not None


def in_nf_tables() -> bool:
    """Whether iptables-save here is iptables-nft, whose chains are nf_tables chains that
    `cni.net.nfexists` can look up: its path resolves to xtables-nft-multi (Debian's alternatives
    link it through /etc/alternatives). False for iptables-legacy and anything unknown."""
    path = which(SAVE[4])
    for _ in range(8):
        if path is None:
            return False
        try:
            target = sysapi.readlink(path)
        except OSError:
            return sysapi.basename(path) == "xtables-nft-multi"
        path = target if target.startswith("/") else sysapi.join(sysapi.dirname(path), target)
    return False


def restore(family: int, script: str, what: str) -> None:
    """Apply one batch on top of the current rules (`--noflush`), waiting at most
    XTABLES_WAIT_SECONDS for the xtables lock."""
    try:
        run([RESTORE[family], "-w", str(XTABLES_WAIT_SECONDS), "--noflush"], script, what)
    except FirewallError as e:
        if _LOCK_BUSY not in str(e):
            raise
        lock = sysapi.environ.get("XTABLES_LOCKFILE") or "/run/xtables.lock"
        raise FirewallTimeout(f"{what}: another process held the xtables lock ({lock}) for more than "
                            f"{XTABLES_WAIT_SECONDS} s; {RESTORE[family]} gave up") from None


def save(family: int) -> str:
    return run([SAVE[family], "-t", "nat"], None, f"read IPv{family} nat table")


def read_nat(family: int, skipped: str, plugin: str = "bridge") -> str | None:
    """One family's `iptables-save -t nat`, or None when that table cannot exist here.

    A nat table that cannot be initialised (IPv6 disabled, the nat module missing on the legacy
    backend) holds none of our rules, since no ADD could have put any there; the family is skipped
    with a note on stderr (`skipped` says what) instead of failing DEL and GC of every attachment
    forever. Any other failure (a lock or ruleset-generation race, a killed tool) is tried once more
    and then reported, so DEL fails and is retried rather than leaving rules behind for good.
    """
    for attempt in (1, 2):
        try:
            return save(family)
        except FirewallError as e:
            if any(phrase in str(e).lower() for phrase in _NO_NAT_TABLE):
                sys.stderr.write(f"{plugin}: IPv{family} {skipped} skipped, no nat table here: {e}\n")
                return None
            if attempt == 2:
                raise
    return None


def remove_chains_script(save_text: str, chains: set[str], entry: str | tuple[str, ...] = "POSTROUTING",
                         also: Callable[[Rule], bool] | None = None) -> str | None:
    """The nat batch removing `chains`, every rule of `entry` (one chain or several) that jumps to
    them, and every rule of the table that `also` picks.

    `save_text` is `iptables-save -t nat` output; None when none of it is there.
    """
    entries = (entry,) if isinstance(entry, str) else entry
    present = {name for name in iptables_save.chains(save_text) if name in chains}
    deletes = [f"-D {rule.spec}" for rule in iptables_save.rules(save_text)
               if (rule.chain in entries and rule.target() in chains) or (also is not None and also(rule))]
    if not present and not deletes:
        return None
    lines = ["*nat", *deletes]
    for name in sorted(present):
        lines += [f"-F {name}", f"-X {name}"]
    lines += ["COMMIT", ""]
    return "\n".join(lines)


def _remove_chains(family: int, save_text: str, chains: set[str], what: str,
                   entry: str | tuple[str, ...] = "POSTROUTING", also: Callable[[Rule], bool] | None = None,
                   ) -> None:
    """Remove `chains` and the jumps to them from one family (`save_text`: its nat dump).

    A batch fails as a whole when a concurrent DEL or GC removed part of it first, so a failure
    reads the table again and retries once; it is an error only while the chains are still there.
    """
    script = remove_chains_script(save_text, chains, entry, also)
    for retry in (True, False):
        if script is None:
            return
        try:
            restore(family, script, what)
            return
        except FirewallTimeout:
            raise  # the lock's holder had its bound; another try would wait as long again
        except FirewallError as e:
            error = e
        try:
            script = remove_chains_script(save(family), chains, entry, also)
        except FirewallError:
            raise error from None
        if script is not None and not retry:
            raise error


def remove_chains(select: Callable[[str], set[str]], what: str, skipped: str,
                  entry: str | tuple[str, ...] = "POSTROUTING", plugin: str = "bridge",
                  families: tuple[int, ...] = (4, 6), also: Callable[[Rule], bool] | None = None) -> None:
    """For each family: the chains `select` picks from the nat dump, removed with their jumps
    from `entry` (and the rules that `also` picks). Every family is tried
    (`tools.every`: until one overruns its bound, since the next would wait on the same lock);
    the failures are reported together."""

    def family_step(family: int) -> Callable[[], None]:
        def step() -> None:
            save_text = read_nat(family, skipped, plugin) if available(family) else None
            chains = select(save_text) if save_text is not None else set()
            if save_text is not None and (chains or also is not None):
                _remove_chains(family, save_text, chains, what, entry, also)
        return step

    every(*(family_step(f) for f in families))
