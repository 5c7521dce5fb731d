"""The arrows point down: read from the code's own imports, no lower layer imports an upper one.

Layers, lowest first (docs/ARCHITECTURE.md draws them, and its map must name every module):
  base      cni/*.py but the entry (record, fastjson, names, childenv, undo, flock...) and cni/layout
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
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
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


def test_tools_do_not_depend_on_the_test_tree():
    """bench/ is a tool an operator runs on a node without the tests: it imports the product (cni,
    ipam) and itself, never `tests`."""
    offenders = []
    for path in sorted(REPO.glob("bench/**/*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            offenders += [f"{path.relative_to(REPO)}: {n}" for n in names if n.split(".")[0] == "tests"]
    assert offenders == []


MAP_ROW = re.compile(r"^(?:\w+)?\s{2,}(?:(\S+/)|(\S+\.py))?(?:\s{2,}(.*))?$")
MAP_FILE = re.compile(r"(?<![\w/.])((?:[\w]+/)*[\w]+\.py)\b")


def map_block(text: str) -> str:
    """The code block under docs/ARCHITECTURE.md's "## Module map" heading."""
    section = text.split("\n## Module map\n", 1)[1]
    return section.split("```\n", 2)[1]


def mapped_files(block: str) -> tuple[set[str], set[str]]:
    """(files, folders) the map names. A row's second column is a folder or a file; a bare `x.py`
    in the description is in the last folder named, one with a slash is from the repository."""
    files: set[str] = set()
    folders: set[str] = set()
    folder = ""
    for line in block.splitlines():
        row = MAP_ROW.match(line)
        if row and row.group(1):
            folder = row.group(1)
            folders.add(folder)
        elif row and row.group(2):
            files.add(row.group(2))
        description = (row.group(3) or "") if row else line
        for name in MAP_FILE.findall(description):
            files.add(name if "/" in name else folder + name)
    return files, folders


# The CRI stubs the build generates from cni/cri/api.proto (the map names the .proto).
GENERATED = ("_pb2.py", "_pb2_grpc.py")


def unmapped(block: str, repo: Path) -> list[str]:
    """Modules of cni/, ipam/, bench/ the map does not name, and names in the map that are not
    there."""
    files, folders = mapped_files(block)
    present = {str(p.relative_to(repo)) for top in ("cni", "ipam", "bench")
               for p in (repo / top).glob("**/*.py")
               if not p.name.endswith(GENERATED)}
    named = files | {f + "__init__.py" for f in folders}
    missing = sorted(p for p in present if p not in named)
    stale = sorted(f"{p} (named, absent)" for p in files if p not in present)
    stale += sorted(f"{f} (named, absent)" for f in folders if not (repo / f).is_dir())
    return missing + stale


def test_the_architecture_map_names_every_module_and_only_those():
    block = map_block((REPO / "docs" / "ARCHITECTURE.md").read_text())
    assert unmapped(block, REPO) == []


def test_the_map_check_sees_a_missing_and_a_stale_entry():
    block = map_block((REPO / "docs" / "ARCHITECTURE.md").read_text())
    assert "cni/ops/libcni.py" in unmapped(block.replace("libcni.py", "libcnx.py"), REPO)
    assert "cni/ops/libcnx.py (named, absent)" in unmapped(block.replace("libcni.py", "libcnx.py"), REPO)
    assert "cni/version.py" in unmapped(block.replace("version.py", "version"), REPO)
