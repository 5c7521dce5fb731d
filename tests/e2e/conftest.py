"""Fixtures of the end-to-end tests: emulated kind nodes (containerd + runc), an image, a CRI client.

Which plugins the nodes run:
  ``PYCNI_E2E_PLUGINS=ours`` (default)  our executables (``bin_dir``), installed into the node's
                                         /opt/cni/bin with ``./build.sh install`` when they are the
                                         repository's dist/bin, over the plugins a kind node ships.
  ``PYCNI_E2E_PLUGINS=reference``       the reference Go plugins v1.9.1 (../shared/realnode), to check
                                         the bench itself.
Which runtime: containerd 2.3.4 (``../shared/realnode``), as a kind node of today runs it, unless a
test asks ``node_factory(runtime=debian_containerd())`` for Debian's 1.6.20.
A test that needs one of our plugins that is not built yet is skipped, naming it.

The node's network config is what ``conf/install-netconf.sh POD_CIDR DIR`` renders from the example
list, i.e. exactly what docs/OPERATIONS.md tells a kind user to run.
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
from helpers import is_root, realnode, run_plugin, unique_name
from kindnode import KindNode, Runtime
from nodesetup import OUR_TYPES, install_plugins, reference_dir, render_netconf, runtime_for
from ociimage import IMAGE_NAME, build_busybox_image
from underlay import Underlay


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
        return mode, reference_dir()
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
def containerd2() -> Runtime:
    """containerd 2.3.4, the runtime of a kind node of today."""
    return runtime_for("2.3.4")


@pytest.fixture(scope="session")
def cnidrive() -> Path:
    """libcni 1.3.0's driver (``cnidrive add|check|del|status NETWORK NETNS``): the chain run as a
    kind node's containerd 2.x runs it, for attachments made outside the CRI."""
    return realnode.require(realnode.CNIDRIVE)


@pytest.fixture(scope="session")
def node_factory(e2e_tmp: Path, busybox_image: Path, chain_plugins) -> Iterator[Callable[..., KindNode]]:
    """``node_factory(pod_cidr=None, namespaces=("default", "k8s.io"), runtime=None,
    registry_config=None, chain=None, env=None)`` starts a node (containerd 2.3.4 unless ``runtime``
    is given) with the chain installed (``chain_plugins`` unless ``chain`` names another, e.g.
    ``("reference", reference_dir())``), the image imported and (given a pod CIDR) the config
    rendered at the runtime's cniVersion; ``env`` goes into containerd's environment and so the
    plugins'. Every node is torn down at the end of the session, and a test may ``node.stop()``
    earlier."""
    if not is_root():
        pytest.skip("needs root (network and mount namespaces, containerd)")
    nodes: list[KindNode] = []

    def make(pod_cidr: str | None = None, namespaces: tuple[str, ...] = ("default", "k8s.io"),
             runtime: Runtime | None = None, registry_config: Path | None = None,
             chain: tuple[str, Path] | None = None, env: dict[str, str] | None = None) -> KindNode:
        runtime = runtime or runtime_for("2.3.4")
        try:
            node = KindNode.start(sandbox_image=IMAGE_NAME, parent=e2e_tmp, runtime=runtime,
                                  registry_config=registry_config, env=env)
        except RuntimeError as exc:
            pytest.fail(f"could not start {runtime.name}: {exc}")
        nodes.append(node)
        install_plugins(node.bin_dir, chain or chain_plugins)
        for ns in namespaces:
            node.import_image(busybox_image, namespace=ns)
        if pod_cidr is not None:
            render_netconf(pod_cidr, node.conf_dir, cni_version=runtime.cni_version)
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


@pytest.fixture(scope="session")
def underlay_factory() -> Iterator[Callable[..., Underlay]]:
    """``underlay_factory(mtu=1500)``: a wire (kind's docker network) nodes are plugged into as eth0;
    each is deleted at the end of the session."""
    made: list[Underlay] = []

    def make(mtu: int = 1500) -> Underlay:
        made.append(Underlay.create(mtu))
        return made[-1]

    try:
        yield make
    finally:
        for underlay in made:
            underlay.close()


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
