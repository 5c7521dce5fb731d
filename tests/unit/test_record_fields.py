"""cni.record: a Record's fields are its `__slots__` at run time and its annotations for the type
checker; both lists name the same fields, so neither can drift from the other."""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import textwrap

import pytest

import cni
import ipam
from cni.record import Record


def _import_all() -> None:
    """Every module of both packages, so that every Record subclass exists."""
    for pkg in (cni, ipam):
        for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            try:
                importlib.import_module(info.name)
            except ImportError:
                if not info.name.startswith("cni.cri."):  # the CRI stubs exist once built
                    raise


def _records() -> list[type]:
    _import_all()
    found, todo = [], [Record]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.append(sub)
            todo.append(sub)
    return sorted(found, key=lambda c: f"{c.__module__}.{c.__qualname__}")


def declared(cls: type) -> list[tuple[str, bool]]:
    """(name, has a value) of each annotation in the class body, `if TYPE_CHECKING:` blocks included."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0]
    assert isinstance(body, ast.ClassDef)
    out, todo = [], list(body.body)
    while todo:
        node = todo.pop(0)
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            out.append((node.target.id, node.value is not None))
        elif isinstance(node, ast.If):
            todo[:0] = node.body + node.orelse
    return out


def problems(cls: type) -> list[str]:
    """What is wrong with a Record's declaration: slots and annotations that differ, a field
    annotated twice or given a value there (a default goes in `_defaults`), an unknown default."""
    slots = cls.__dict__.get("__slots__", ())
    annotated = declared(cls)
    names = [n for n, _ in annotated]
    out = [f"annotated twice: {n}" for n in sorted({n for n in names if names.count(n) > 1})]
    out += [f"slot without annotation: {n}" for n in sorted(set(slots) - set(names))]
    out += [f"annotation without slot: {n}" for n in sorted(set(names) - set(slots))]
    out += [f"value in the class body: {n}" for n, has_value in annotated if has_value]
    out += [f"default of no slot: {n}" for n in sorted(set(cls.__dict__.get("_defaults", {})) - set(slots))]
    return out


RECORDS = _records()


def test_the_scan_finds_the_records():
    names = {c.__qualname__ for c in RECORDS}
    assert {"Cidr", "Request", "Result", "Link", "BridgeConf", "PortMapConf", "PtpConf"} <= names


@pytest.mark.parametrize("cls", RECORDS, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_slots_and_annotations_name_the_same_fields(cls):
    assert problems(cls) == []


def test_drift_is_caught():
    """The check reads what it claims to, inside `if TYPE_CHECKING:` blocks too."""
    TYPE_CHECKING = False

    class Drifted(Record):
        __slots__ = ("a", "b", "c")
        _defaults = {"d": 0}
        a: int
        if TYPE_CHECKING:
            b: int
            b: str
        else:
            e: int = 0

    assert problems(Drifted) == ["annotated twice: b", "slot without annotation: c",
                                 "annotation without slot: e", "value in the class body: e",
                                 "default of no slot: d"]
