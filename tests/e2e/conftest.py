"""Fixtures of the end-to-end tests: emulated kind nodes (containerd + runc), an image, a CRI client.

Which plugins the nodes run:
  ``PYCNI_E2E_PLUGINS=ours`` (default)  our executables (``bin_dir``), installed into the node's
                                         /opt/cni/bin with ``./build.sh install`` when they are the
                                         repository's dist/bin, over the plugins a kind node ships.
  ``PYCNI_E2E_PLUGINS=reference``       the reference Go plugins (/usr/lib/cni), to check the bench
                                         itself.
A test that needs one of our plugins that is not built yet is skipped, naming it.

The node's network config is what ``conf/install-netconf.sh POD_CIDR DIR`` renders from the example
list, i.e. exactly what the README tells a kind user to run.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from cri import CriClient, load_stubs
from helpers import is_root, run_plugin, unique_name
from kindnode import KindNode
from nodesetup import OUR_TYPES, REF_DIR, install_plugins, render_netconf
from ociimage import IMAGE_NAME, build_busybox_image


@pytest.fixture(scope="session")
def e2e_tmp() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="pycni-e2e-"))
    try:
        yield path
    finally:
        if not os.environ.get("PYCNI_KEEP_TMP"):
            shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def busybox_image(e2e_tmp: Path) -> Path:
    """The OCI archive of the busybox test image (``IMAGE_NAME``)."""
    try:
        return build_busybox_image(e2e_tmp / "busybox-oci.tar")
    except RuntimeError as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def cri_stubs():
    try:
        return load_stubs()
    except RuntimeError as exc:
        pytest.skip(str(exc))


def _answers_version(path: Path) -> str | None:
    """None when the executable answers VERSION; otherwise why not."""
    if not path.exists():
        return f"{path} missing"
    out = run_plugin(str(path), "VERSION", {"cniVersion": "1.0.0"}, timeout=60)
    if out.rc != 0 or not isinstance(out.json, dict) or "supportedVersions" not in out.json:
        return f"{path.name}: VERSION exited {out.rc}: {(out.stdout or out.stderr).strip()[:200]}"
    return None


@pytest.fixture(scope="session")
def chain_plugins(request: pytest.FixtureRequest) -> tuple[str, Path]:
    """(``"ours"`` or ``"reference"``, the directory of the chain's plugins)."""
    mode = os.environ.get("PYCNI_E2E_PLUGINS", "ours")
    if mode == "reference":
        if not (REF_DIR / "bridge").exists():
            pytest.skip(f"reference plugins missing in {REF_DIR} (apt install containernetworking-plugins)")
        return mode, REF_DIR
    if mode != "ours":
        pytest.fail(f"PYCNI_E2E_PLUGINS={mode!r}: use 'ours' or 'reference'")
    bin_dir: Path = request.getfixturevalue("bin_dir")
    problems = [p for t in OUR_TYPES if (p := _answers_version(bin_dir / t))]
    if problems:
        pytest.skip("our plugins are not all built yet: " + "; ".join(problems))
    return mode, bin_dir


@pytest.fixture(scope="session")
def node_bin_dir(e2e_tmp: Path, chain_plugins) -> Path:
    """A node's /opt/cni/bin (kind's plugins, then the chain's) for runs outside containerd."""
    dest = e2e_tmp / "node-bin"
    install_plugins(dest, chain_plugins)
    return dest


@pytest.fixture(scope="session")
def node_factory(e2e_tmp: Path, busybox_image: Path, chain_plugins) -> Iterator[Callable[..., KindNode]]:
    """``node_factory(pod_cidr=None, namespaces=("default", "k8s.io"))`` starts a node with the chain
    installed, the image imported and (given a pod CIDR) the rendered config; every node is torn down
    at the end of the session, and a test may ``node.stop()`` earlier."""
    if not is_root():
        pytest.skip("needs root (network and mount namespaces, containerd)")
    nodes: list[KindNode] = []

    def make(pod_cidr: str | None = None, namespaces: tuple[str, ...] = ("default", "k8s.io")) -> KindNode:
        try:
            node = KindNode.start(sandbox_image=IMAGE_NAME, parent=e2e_tmp)
        except RuntimeError as exc:
            pytest.fail(f"could not start containerd: {exc}")
        nodes.append(node)
        install_plugins(node.bin_dir, chain_plugins)
        for ns in namespaces:
            node.import_image(busybox_image, namespace=ns)
        if pod_cidr is not None:
            render_netconf(pod_cidr, node.conf_dir)
        return node

    try:
        yield make
    finally:
        errors = []
        for node in nodes:
            try:
                node.stop()
            except Exception as exc:
                errors.append(str(exc))
        if errors:
            pytest.fail("node teardown: " + "; ".join(errors))


@pytest.fixture
def cri_factory(cri_stubs) -> Iterator[Callable[[KindNode], CriClient]]:
    clients: list[CriClient] = []

    def make(node: KindNode) -> CriClient:
        client = CriClient(node.socket, *cri_stubs)
        clients.append(client)
        return client

    try:
        yield make
    finally:
        for c in clients:
            c.close()


@pytest.fixture
def pods(node: KindNode, cri_factory) -> Iterator:  # `node`: each test module's own
    """Factory: ``pods(annotations=None) -> sandbox id``; every pod is stopped and removed afterwards,
    as the kubelet would."""
    import grpc

    cri = cri_factory(node)
    made: list[str] = []

    def run(annotations: dict[str, str] | None = None, host_ports: dict[int, int] | None = None) -> str:
        sid = cri.run_pod(unique_name("pod-", 8), annotations=annotations, host_ports=host_ports)
        made.append(sid)
        return sid

    run.cri = cri  # type: ignore[attr-defined]
    try:
        yield run
    finally:
        for sid in made:
            for call in (cri.stop_pod, cri.remove_pod):
                with contextlib.suppress(grpc.RpcError):
                    call(sid)
