"""The arrows point down: read from the code's own imports, no lower layer imports an upper one.

Layers, lowest first (docs/ARCHITECTURE.md draws them):
  base      cni/*.py but the entry: record, fastjson, names, childenv, undo, flock
  net       cni/net: the kernel edge (netlink, namespaces, tc, sysctl, firewall tools)
  contract  cni/contract: the CNI protocol (request, result, errors, schema, dispatch, delegate)
  plugins   cni/plugins/<type> and ipam/: each plugin uses contract, net and base, never another plugin
  registry  cni/plugins/__init__.py: type name -> module, by name only
  operator  cni/ops, cni/cri: the operator command's work (reads what plugins left on a node);
            cni/warm: the warm process (`pycni serve`), which runs the entry it is given
  entry     cni/__main__.py, cni/cli.py
Every import counts, at the top of a module or inside a function (the lazy ones too).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
RANK = {"base": 0, "net": 1, "contract": 2, "plugins": 3, "registry": 4, "operator": 5, "entry": 6}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer(module: str) -> tuple[str, str]:
    """(layer, unit): the unit tells plugins apart (cni.plugins.bridge, cni.plugins.loopback, ipam)."""
    parts = module.split(".")
    if parts[0] == "ipam":
        return "plugins", "ipam"
    if module in ("cni.__main__", "cni.cli"):
        return "entry", module
    if len(parts) > 1 and parts[1] in ("ops", "cri", "warm"):
        return "operator", "operator"
    if module == "cni.plugins":
        return "registry", module
    if len(parts) > 2 and parts[1] == "plugins":
        return "plugins", ".".join(parts[:3])
    if len(parts) > 1 and parts[1] in ("net", "contract"):
        return parts[1], parts[1]
    return "base", module


def imports_of(path: Path) -> set[str]:
    """The cni/ipam modules a file imports, relative imports resolved."""
    package = module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            names = [base, *(f"{base}.{a.name}" for a in node.names)]
        else:
            continue
        out |= {n for n in names if n.split(".")[0] in ("cni", "ipam") and _exists(n)}
    return out


def _exists(module: str) -> bool:
    path = REPO.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


SOURCES = sorted([*REPO.glob("cni/**/*.py"), *REPO.glob("ipam/**/*.py")])
EDGES = {module_name(p): imports_of(p) for p in SOURCES}


def test_the_reader_sees_the_imports():
    """Known edges, top-level, relative and inside functions: a reader that saw none would pass anything."""
    assert "cni.net.netlink" in EDGES["cni.net.link"]
    assert "cni.contract.errors" in EDGES["cni.contract.dispatch"]  # `from .errors import ...`
    assert "cni.net.netns" in EDGES["cni.contract.dispatch"]  # imported inside check_netns
    assert "cni.plugins.bridge.config" in EDGES["cni.plugins.bridge.add"]  # `from . import config`
    assert "cni.contract.dispatch" in EDGES["cni.__main__"]


@pytest.mark.parametrize("module", sorted(EDGES))
def test_imports_point_down(module):
    kind, unit = layer(module)
    for target in sorted(EDGES[module]):
        target_kind, target_unit = layer(target)
        assert RANK[target_kind] <= RANK[kind], f"{module} ({kind}) imports {target} ({target_kind})"
        if kind == target_kind == "plugins":
            assert unit == target_unit, f"plugin {unit} imports another plugin: {target}"


def test_the_registry_names_plugins_without_importing_them():
    assert not {t for t in EDGES["cni.plugins"] if layer(t)[0] == "plugins"}
