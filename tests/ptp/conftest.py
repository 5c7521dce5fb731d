"""Fixtures of the ptp tests: plugin directories, networks with unique names, host state put back.

``ours``    a CNI_PATH directory with our ``ptp``, ``host-local``, ``loopback`` and ``portmap``.
``ref``     the reference plugins v1.9.1 (what kind ships); ``deb`` Debian 12's 1.1.1.
``net``     factory: ``net(plugin_conf, version=..., name=..., extra=[...]) -> Net``, a conflist with a
            unique network name run through cnitool (bridge's ``Net``); every masquerade rule named
            after the network is removed afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from bridge.conftest import forwarding_restored, net_factory


@pytest.fixture(scope="session")
def ours(bin_dir: Path, bench_tmp: Path) -> Path:
    d = bench_tmp / "ptp-ours"
    d.mkdir(exist_ok=True)
    for name in ("ptp", "host-local", "loopback", "portmap"):
        p = d / name
        if p.is_symlink() or p.exists():
            p.unlink()
        p.symlink_to(bin_dir / name)
    return d


@pytest.fixture(scope="session")
def ref(ref_bin_dir: Path) -> Path:
    return ref_bin_dir


@pytest.fixture(scope="session")
def deb(debian_ref_bin_dir: Path) -> Path:
    return debian_ref_bin_dir


@pytest.fixture(scope="session", autouse=True)
def _restore_host_sysctls() -> Iterator[None]:
    """ptp turns forwarding on, as the reference does; put the host back as it was."""
    with forwarding_restored():
        yield


@pytest.fixture
def net(cnitool, state_dir: Path, bench_tmp: Path) -> Iterator:
    yield from net_factory(cnitool, state_dir, bench_tmp, "pcptp")
