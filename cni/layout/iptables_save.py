"""Reading `iptables-save` output: its tables, the chains each declares, its rules, a rule's comment
and jump target. The one walker every reader of a nat dump goes through (ipMasq, portmap, the
operator's status), so that they all see the same rules the same way.
"""

from __future__ import annotations

from cni.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

_JUMPS = ("-j", "-g", "--jump", "--goto")


class Rule(Record):
    """One `-A` line of a dump: its table, its chain and its text after `-A ` (chain included)."""

    __slots__ = ("table", "chain", "spec")
    table: str
    chain: str
    spec: str

    def words(self) -> list[str]:
        """The rule split as iptables-restore reads it (quotes undone); [] when it is not well formed."""
        return split(self.spec)

    def comment(self) -> str | None:
        """The text of the rule's `--comment`, or None (cheap when the rule has none)."""
        return comment(self.words()) if "--comment" in self.spec else None

    def target(self) -> str | None:
        """The chain or target the rule jumps or goes to, or None."""
        return jump_target(self.words())


def quote(text: str) -> str:
    """A word quoted as iptables-save prints a comment and iptables-restore reads it back: double
    quotes, with backslash and double quote escaped (`split` undoes it)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def split(text: str) -> list[str]:
    """Words as iptables-restore reads them; [] for a line it would refuse (an open quote)."""
    import shlex  # only readers of a dump need it, never an ADD of a plugin that writes none

    try:
        return shlex.split(text)
    except ValueError:
        return []


def argument(words: list[str], option: str) -> str | None:
    """The word after the first `option` (`-p`, `--dport`, `--comment`) in a rule's words, or None."""
    try:
        return words[words.index(option) + 1]
    except (ValueError, IndexError):
        return None


def comment(words: list[str]) -> str | None:
    """The argument of `--comment` in a rule's words, or None."""
    return argument(words, "--comment")


def jump_target(words: list[str]) -> str | None:
    """The argument of the rule's -j/-g (or --jump/--goto), or None."""
    for i, word in enumerate(words[:-1]):
        if word in _JUMPS:
            return words[i + 1]
    return None


def _lines(save: str) -> Iterator[tuple[str, str]]:
    """(table, line) for every line inside a `*table` ... `COMMIT` block."""
    table = ""
    for line in save.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
        elif line == "COMMIT":
            table = ""
        elif table:
            yield table, line


def tables(save: str) -> list[str]:
    """The tables a dump holds, in its order."""
    return [line[1:].strip() for line in save.splitlines() if line.startswith("*")]


def chains(save: str, table: str = "nat") -> list[str]:
    """The chains `table` declares (`:NAME POLICY [counters]`), built-in ones included."""
    return [line[1:].split(" ", 1)[0] for t, line in _lines(save) if t == table and line.startswith(":")]


def rules(save: str, table: str = "nat") -> list[Rule]:
    """The rules of `table`, in order."""
    out = []
    for t, line in _lines(save):
        if t == table and line.startswith("-A "):
            chain = line[3:].split(" ", 1)[0]
            out.append(Rule(t, chain, line[3:]))
    return out
