"""Fixtures of the pycni test bench.

Executables:
  ``bin_dir`` (session)      our plugins: ``$PYCNI_BIN`` if set, else ``./build.sh`` once, then dist/bin.
  ``ref_bin_dir`` (session)  the reference Go plugins v1.9.1 (``helpers.realnode``: ../shared/realnode).
  ``debian_ref_bin_dir`` (session)  Debian's reference plugins 1.1.1 in /usr/lib/cni, for on-disk
                             interoperability with older nodes.
  ``cnitool`` (session)      tests/tools/cnitool built once; see ``helpers.cnitool.Cnitool``.
  ``run_plugin``             ``helpers.plugin.run_plugin``: exec one plugin with an exact CNI environment.
Per test:
  ``netns``        factory: ``ns = netns(prefix="pycni-")`` makes ``<prefix><hex>``, a
                   ``helpers.NetNS``: ``ns.name``, ``ns.path``, ``ns.exec(*cmd)``, ``ns.json(*cmd)``,
                   ``ns.link(name)``, ``ns.sysctl(key)``; deleted on teardown. The only namespace
                   fixture; ``helpers.ns_argv``/``ns_exec`` are the only ways into a namespace.
  ``state_dir``    a private directory (IPAM ``dataDir``, cnitool cache), removed afterwards.
  ``netconf``      factory writing config files into ``netconf.dir`` (use as NETCONFPATH).
  ``host_links``   factory registering host links (bridges) to delete on teardown.
  ``bridge_name``  a unique ``pcb<hex>`` name, deleted on teardown if it exists.
Markers:
  ``@pytest.mark.root`` skips the test unless running as root. Every fixture that touches the kernel
  skips the same way, so as root nothing is skipped.
  ``heavy`` is set on collection (``helpers.tiers``): root, namespaces or the bundle needed.
  ``pytest -m "not heavy"`` is the quick tier, no root needed.

Set ``PYCNI_KEEP_TMP=1`` to keep the temporary directories for inspection.
Nothing here touches /etc/cni, /opt/cni/bin or /var/lib/cni.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import (
    Cnitool,
    NetNS,
    add_netns,
    build_cnitool,
    del_netns,
    delete_link,
    is_root,
    netns_exists,
    realnode,
    tiers,
    unique_ifname,
    unique_name,
    write_netconf,
)
from helpers import run_plugin as _run_plugin
from helpers.warm import PATHS

REPO = Path(__file__).resolve().parent.parent
BUILD_TIMEOUT = 1800
ROOT_REASON = "needs root (network namespaces, links, netfilter)"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that needs root, namespaces or the bundle ``heavy`` (``helpers.tiers``); in
    the quick tier, property tests draw fewer examples."""
    tests_dir = Path(__file__).resolve().parent
    quick = tiers.is_quick_run(config.option.markexpr)
    if quick:
        tiers.keep_no_examples()
    for item in items:
        path = Path(str(item.path)).resolve()
        folders = path.relative_to(tests_dir).parts[:-1] if path.is_relative_to(tests_dir) else ()
        markers = (mark.name for mark in item.iter_markers())
        if tiers.is_heavy(folders, getattr(item, "fixturenames", ()), markers):
            item.add_marker(tiers.MARKER)
        elif quick:
            tiers.fewer_examples(getattr(item, "function", None))


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("root") is not None and not is_root():
        pytest.skip(ROOT_REASON)


def require_root() -> None:
    if not is_root():
        pytest.skip(ROOT_REASON)


def _keep_tmp() -> bool:
    return os.environ.get("PYCNI_KEEP_TMP", "") not in ("", "0")


def _rmtree(path: Path) -> None:
    if not _keep_tmp():
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def bench_tmp() -> Iterator[Path]:
    """One private directory for the whole session (removed at the end)."""
    path = Path(tempfile.mkdtemp(prefix="pycni-bench-"))
    try:
        yield path
    finally:
        _rmtree(path)


# ---------------------------------------------------------------- executables

@pytest.fixture(scope="session")
def bin_dir() -> Path:
    """The directory of our plugin executables (one per type: bridge, host-local, ...).

    ``$PYCNI_BIN`` wins. Otherwise ``./build.sh`` runs once (with ``PYCNI_BUILD_ONLY=1`` and
    ``PYCNI_BIN`` exported, so a build script that runs the tests itself does not recurse) and
    ``dist/bin`` is used.
    """
    env_dir = os.environ.get("PYCNI_BIN")
    if env_dir:
        path = Path(env_dir).resolve()
        if not path.is_dir():
            pytest.fail(f"PYCNI_BIN={env_dir} is not a directory")
        return path
    build = REPO / "build.sh"
    if not build.exists():
        pytest.skip("build.sh is not in the repository yet; set PYCNI_BIN to a directory of plugins")
    dist = REPO / "dist" / "bin"
    env = dict(os.environ, PYCNI_BUILD_ONLY="1", PYCNI_BIN=str(dist))
    proc = subprocess.run(["bash", str(build)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=BUILD_TIMEOUT)
    if proc.returncode != 0:
        pytest.fail(f"./build.sh exited {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    if not dist.is_dir():
        pytest.fail(f"./build.sh succeeded but {dist} does not exist")
    return dist


@pytest.fixture(scope="session")
def ref_bin_dir() -> Path:
    """The reference Go plugins v1.9.1, as a kind node ships them."""
    return realnode.reference_plugins()


@pytest.fixture(scope="session")
def debian_ref_bin_dir() -> Path:
    """Debian 12's reference plugins 1.1.1 (older nodes), for on-disk interoperability."""
    return realnode.debian_plugins()


@pytest.fixture(scope="session")
def cnitool(bench_tmp: Path) -> Cnitool:
    """The libcni driver, built once per session.

    ``cnitool(cmd, network, netns_path, *, netconf_dir, cni_path, ifname="eth0", cap_args=None,
    cni_args=None, container_id=None, cache_dir=None, extra_env=None) -> Outcome`` and
    ``cnitool.version(type, cni_path=...)``. Pass ``cache_dir=state_dir / "cache"`` for a per-test
    result cache; the default is a session directory under the bench's temp dir.
    """
    try:
        binary = build_cnitool(bench_tmp / "cnitool")
    except RuntimeError as exc:
        pytest.skip(str(exc))
    return Cnitool(binary, bench_tmp / "cnitool-cache")


@pytest.fixture(scope="session")
def run_plugin():
    """``run_plugin(path_or_type, command, config, *, netns="", ifname="eth0", container_id=...,
    cni_args="", cni_path=None, extra_env=None, stdin=None, timeout=60) -> Outcome``."""
    return _run_plugin


# ---------------------------------------------------------------- per-test state

@pytest.fixture
def state_dir(bench_tmp: Path) -> Iterator[Path]:
    """A private directory for one test: use ``state_dir / "ipam"`` as host-local ``dataDir`` and
    ``state_dir / "cache"`` as the cnitool cache. Removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="state-", dir=bench_tmp))
    try:
        yield path
    finally:
        _rmtree(path)


class NetconfWriter:
    """``netconf(config, *, filename=None, ext=None) -> Path`` writes into ``netconf.dir``."""

    def __init__(self, directory: Path):
        self.dir = directory

    def __call__(self, config: dict | str | bytes, *, filename: str | None = None,
                 ext: str | None = None) -> Path:
        return write_netconf(self.dir, config, filename=filename, ext=ext)


@pytest.fixture
def netconf(bench_tmp: Path) -> Iterator[NetconfWriter]:
    """Factory writing ``.conflist``/``.conf`` files into a private NETCONFPATH (``netconf.dir``)."""
    path = Path(tempfile.mkdtemp(prefix="netconf-", dir=bench_tmp))
    try:
        yield NetconfWriter(path)
    finally:
        _rmtree(path)


@pytest.fixture
def netns() -> Iterator:
    """Factory: ``ns = netns()`` creates ``pycni-<hex>`` (``ip netns add``); every namespace made is
    deleted on teardown, whatever the test did (one it already removed is fine)."""
    require_root()
    made: list[str] = []

    def make(prefix: str = "pycni-") -> NetNS:
        name = unique_name(prefix, 12)
        made.append(name)
        return NetNS(name, add_netns(name))

    try:
        yield make
    finally:
        left = []
        for name in made:
            del_netns(name)
            if netns_exists(name):
                left.append(name)
        if left:
            pytest.fail(f"could not delete network namespaces {left}")


@pytest.fixture
def host_links() -> Iterator:
    """Factory: ``host_links(name) -> name`` registers a host-namespace link (bridge, dummy, ...) to
    delete on teardown if it still exists."""
    require_root()
    names: list[str] = []

    def register(name: str) -> str:
        names.append(name)
        return name

    try:
        yield register
    finally:
        for name in reversed(names):
            delete_link(name)


@pytest.fixture
def bridge_name(host_links) -> str:
    """A unique bridge name ``pcb<8 hex>``, deleted from the host on teardown."""
    return host_links(unique_ifname("pcb"))


@pytest.fixture(scope="session", params=PATHS)
def launch_path(request) -> str:
    """The launch path a suite's plugin calls take, cold or warm (helpers.warm): the hostile and
    reliability suites run every case on both."""
    return request.param
