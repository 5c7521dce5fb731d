"""Every registered plugin defines exactly the contract dispatch reads (cni/contract/plugin.py).

dispatch reads the names without defaults, so a plugin that misses one fails on its first call;
this test finds it before that, and finds a name that looks like part of the contract but is not
(a misspelling such as NEED_NETNS would otherwise be silently unused).
"""

from __future__ import annotations

import importlib
import inspect
import re

import pytest

from cni import plugins
from cni.contract import plugin as contract
from cni.contract import versions
from cni.contract.dispatch import HANDLERS

CONTRACT_LIKE = re.compile(r"^[A-Z][A-Z_]*$")  # module constants: the contract's are all upper case
NOT_CONTRACT = {"TYPE_CHECKING"}  # the cheap typing guard every module uses


@pytest.fixture(params=sorted(plugins.MODULES))
def plugin(request):
    """The module as a call finds it. A package whose verb shares its name with the submodule it
    imports lazily (bridge's `add` and `add.py`) has that attribute replaced by the submodule once
    another test imports it; reloading gives back what the package itself defines."""
    return importlib.reload(plugins.load(request.param))


def test_protocol_and_names_agree():
    declared = set(contract.Plugin.__annotations__) | {
        name for name, value in vars(contract.Plugin).items()
        if inspect.isfunction(value) and not name.startswith("_")
    }
    assert declared == set(contract.NAMES)
    assert {f.__name__ for f in (HANDLERS[verb](contract.Plugin) for verb in HANDLERS)} <= set(contract.NAMES)


def test_defines_every_name(plugin):
    missing = [name for name in contract.NAMES if not hasattr(plugin, name)]
    assert not missing, f"{plugin.__name__} lacks {missing}"


def test_defines_no_other_contract_like_constant(plugin):
    own = {name for name, value in vars(plugin).items()
           if CONTRACT_LIKE.match(name) and not inspect.ismodule(value)}
    required = {name for name in contract.NAMES if CONTRACT_LIKE.match(name)}
    stray = own - required - NOT_CONTRACT
    # A plugin's own constants are fine when they are not near-misses of a contract name.
    near = {s for s in stray for r in required if s != r and _close(s, r)}
    assert not near, f"{plugin.__name__}: {sorted(near)} look like misspelt contract names"


def _close(a: str, b: str) -> bool:
    """Within one edit, or one is the other with a letter or an S dropped."""
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) <= 1
    short, long = sorted((a, b), key=len)
    return any(long[:i] + long[i + 1:] == short for i in range(len(long)))


def test_values_have_the_contract_types(plugin):
    assert plugin.TYPE in plugins.MODULES and plugins.MODULES[plugin.TYPE] == plugin.__name__
    assert isinstance(plugin.SCHEMA, str) and plugin.SCHEMA
    assert isinstance(plugin.VERSIONS, tuple) and set(plugin.VERSIONS) <= set(versions.SUPPORTED)
    assert plugin.CNI_ARGS_KEYS is None or isinstance(plugin.CNI_ARGS_KEYS, frozenset)
    assert isinstance(plugin.NEEDS_NETNS, bool) and isinstance(plugin.READS_PREV_RESULT, bool)
    assert isinstance(plugin.IPAM, bool)
    assert plugin.prev_result_as_text is None or callable(plugin.prev_result_as_text)
    for verb in ("add", "delete", "check", "status", "gc"):
        params = list(inspect.signature(getattr(plugin, verb)).parameters)
        assert params == ["req"], f"{plugin.__name__}.{verb}{params}"


def test_a_misspelt_name_is_found():
    """The near-miss rule catches the mistakes it is for, and leaves real constants alone."""
    assert _close("NEED_NETNS", "NEEDS_NETNS") and _close("VERSION", "VERSIONS")
    assert _close("CNI_ARG_KEYS", "CNI_ARGS_KEYS") and not _close("LOOPBACK_MAC", "NEEDS_NETNS")
