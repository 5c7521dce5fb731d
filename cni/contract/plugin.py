"""The plugin contract: what `dispatch` reads from a plugin module, named once.

A plugin is a module. `dispatch` reads these names from it directly (no defaults: a misspelt name
fails loudly on its first call and in tests/contract/test_plugin_contract.py, which holds every
registered plugin to this list), as the reference's `skel.PluginMainFuncs` holds a plugin to its
verbs. The Protocol is for type checkers and that test: `dispatch` names it only under
TYPE_CHECKING, so the call path never imports `typing` for it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .request import Request
from .result import Result


class Plugin(Protocol):
    """One CNI plugin type, as a module provides it."""

    TYPE: str  # the CNI `type` it serves
    SCHEMA: str  # the name of its schema in conf/schemas (cni/contract/schema.py)
    VERSIONS: tuple[str, ...]  # the spec versions it answers (VERSION, and every verb's check)
    CNI_ARGS_KEYS: frozenset[str] | None  # the CNI_ARGS keys it reads; None: it reads none
    NEEDS_NETNS: bool  # ADD and CHECK need CNI_NETNS to be another network namespace
    READS_PREV_RESULT: bool  # prevResult is parsed (and refused when malformed) before it runs
    IPAM: bool  # an IPAM plugin: what another plugin's `ipam.type` may name (delegate.find_ipam)
    # Given (verb, config): True when the plugin passes prevResult on without reading it whole, so
    # it is kept as text and not parsed; None when prevResult is always parsed.
    prev_result_as_text: Callable[[str, dict], bool] | None

    def add(self, req: Request) -> Result: ...
    def delete(self, req: Request) -> None: ...
    def check(self, req: Request) -> None: ...
    def status(self, req: Request) -> None: ...
    def gc(self, req: Request) -> None: ...


# Every name a plugin module must define, for the test and for anyone adding a plugin.
NAMES: tuple[str, ...] = (
    "TYPE", "SCHEMA", "VERSIONS", "CNI_ARGS_KEYS", "NEEDS_NETNS", "READS_PREV_RESULT", "IPAM",
    "prev_result_as_text", "add", "delete", "check", "status", "gc",
)
