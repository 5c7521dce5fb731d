"""Fresh Debian 12 roots for the tests of what a new machine or node sees.

``debian_root(include)`` (session) makes a minbase Debian 12 root with debootstrap, with the
packages in ``include`` added, once per session (``PYCNI_ROOT_CACHE=DIR`` keeps them in DIR for
the next run); tests work on private copies from ``scratch_root``. Each test here is skipped only
when the package registries cannot be reached, and says so.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from helpers import debroot

UNREACHABLE = "the package registries cannot be reached from this machine"


@pytest.fixture(scope="session")
def debian_root() -> Iterator[Callable[..., Path]]:
    if os.geteuid() != 0:
        pytest.skip("needs root (debootstrap, chroot, mount namespaces)")
    cache_env = os.environ.get("PYCNI_ROOT_CACHE")
    cache = Path(cache_env) if cache_env else Path(tempfile.mkdtemp(prefix="pycni-roots-"))
    made: dict[tuple[str, ...], Path] = {}

    def get(include: tuple[str, ...] = ()) -> Path:
        key = tuple(sorted(include))
        if key not in made:
            path = cache / ("debian12-minbase" + "".join(f"+{p}" for p in key))
            if not (path / "usr/bin/apt-get").exists():
                cache.mkdir(parents=True, exist_ok=True)
                shutil.rmtree(path, ignore_errors=True)
                try:
                    debroot.make_root(path, key)
                except debroot.Unreachable as exc:
                    pytest.skip(f"{UNREACHABLE} ({exc})")
                except RuntimeError as exc:
                    pytest.fail(str(exc))
            made[key] = path
        return made[key]

    try:
        yield get
    finally:
        if not cache_env:
            shutil.rmtree(cache, ignore_errors=True)


@pytest.fixture
def scratch_root(debian_root) -> Iterator[Callable[..., Path]]:
    """Factory: ``scratch_root(include)`` is a private copy of that root, removed afterwards."""
    work = Path(tempfile.mkdtemp(prefix="pycni-root-"))
    count = 0

    def make(include: tuple[str, ...] = ()) -> Path:
        nonlocal count
        count += 1
        return debroot.copy_root(debian_root(include), work / f"root{count}")

    try:
        yield make
    finally:
        if os.environ.get("PYCNI_KEEP_TMP", "") in ("", "0"):
            shutil.rmtree(work, ignore_errors=True)
