"""NetworkReady, the runtime condition the kubelet turns into the node's Ready condition.

containerd 2.x runs CNI STATUS over the node's list (when its cniVersion is 1.1.0 or later) on
every CRI ``Status`` call, and reports ``NetworkReady=false`` (reason ``NetworkPluginNotReady``,
the plugin's error in the message) while it fails; nothing is cached, so the next poll after a fix
says Ready again. containerd 1.6 never runs STATUS. What our chain's STATUS checks: host-local's
store can be written and every range set has a free address (bridge asks its IPAM; bandwidth,
portmap and loopback have nothing that can run out).

- pods started, stopped and removed at once never make a poll say NotReady;
- a full range and a read-only store make it NotReady with host-local's message, until fixed;
- containerd 1.6, and 2.x with a list at 1.0.0, stay Ready with a read-only store while every
  RunPodSandbox fails: the node looks healthy and its pods do not start;
- with the reference chain (``PYCNI_E2E_PLUGINS=reference``: v1.9.1, whose host-local has no
  STATUS of its own) the node stays Ready in both cases.
"""

from __future__ import annotations

import contextlib
import ipaddress
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from cri import CriClient
from helpers import unique_name
from kindnode import KindNode
from nodecheck import network_name, reservations, wait_for
from nodesetup import render_netconf, runtime_for

grpc = pytest.importorskip("grpc", reason="grpcio missing (pip install grpcio grpcio-tools)")

CHURN_CIDR = "10.244.11.0/24"
CHURN_PODS = 24
CHURN_ROUNDS = 2
# A /29: host-local hands out .2-.6 (the first address is the gateway).
SMALL_CIDR = ipaddress.IPv4Network("10.244.12.0/29")
SMALL_FREE = SMALL_CIDR.num_addresses - 3
RO_CIDR = "10.244.13.0/24"
STORE = "/var/lib/cni/networks"  # host-local's default dataDir, as the example list leaves it
NOT_READY = "NetworkPluginNotReady"


def _network(node: KindNode) -> str:
    (conf,) = [p for p in node.conf_dir.iterdir() if not p.name.startswith(".")]
    return network_name(conf)


def _ready(cri: CriClient) -> tuple[bool, str, str]:
    """(NetworkReady, reason, message) from one CRI Status call."""
    cond = cri.conditions()["NetworkReady"]
    return cond.status, cond.reason, cond.message


def _wait_ready(cri: CriClient, what: str, timeout: float = 15) -> None:
    """Wait for NetworkReady (a config just written is read a moment later); on timeout, say why
    the runtime was not ready."""
    last: list[tuple[bool, str, str]] = []

    def ready() -> bool:
        last[:] = [_ready(cri)]
        return last[0][0]

    try:
        wait_for(ready, timeout, what)
    except AssertionError as exc:
        raise AssertionError(f"{exc}: last answer {last}") from None


class Poller:
    """Polls CRI Status in a thread of its own, as the kubelet does, recording every answer."""

    def __init__(self, cri: CriClient) -> None:
        self.cri = cri
        self.answers: list[tuple[bool, str, str]] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.answers.append(_ready(self.cri))
            except Exception as exc:  # reported by the test
                self.errors.append(exc)
                return

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


@pytest.fixture
def sandboxes(cri_factory) -> Iterator[Callable[[KindNode], CriClient]]:
    """``sandboxes(node)``: a CRI client whose pods (``client.made``) are stopped and removed
    afterwards, whatever the test left; then the node is stopped (it served this test only)."""
    made: list[tuple[KindNode, CriClient]] = []

    def make(node: KindNode) -> CriClient:
        cri = cri_factory(node)
        cri.made = []  # type: ignore[attr-defined]
        made.append((node, cri))
        return cri

    try:
        yield make
    finally:
        for node, cri in made:
            for sid in cri.made:  # type: ignore[attr-defined]
                for call in (cri.stop_pod, cri.remove_pod):
                    with contextlib.suppress(grpc.RpcError):
                        call(sid)
            node.stop()


def _run_pod(cri: CriClient) -> str:
    sid = cri.run_pod(unique_name("pod-", 8))
    cri.made.append(sid)  # type: ignore[attr-defined]
    return sid


def _remove_pod(cri: CriClient, sid: str) -> None:
    cri.stop_pod(sid)
    cri.remove_pod(sid)
    cri.made.remove(sid)  # type: ignore[attr-defined]


def test_ready_through_pod_churn(node_factory, sandboxes, cri_factory) -> None:
    node = node_factory(CHURN_CIDR, namespaces=("k8s.io",))
    cri = sandboxes(node)
    network = _network(node)
    _wait_ready(cri, "NetworkReady on a fresh node")

    def lifecycle(_: int) -> None:
        for _round in range(CHURN_ROUNDS):
            _remove_pod(cri, _run_pod(cri))

    with Poller(cri_factory(node)) as poller, ThreadPoolExecutor(CHURN_PODS) as pool:
        list(pool.map(lifecycle, range(CHURN_PODS)))
    assert not poller.errors, poller.errors
    not_ready = [a for a in poller.answers if not a[0]]
    # Each poll runs every plugin's STATUS, so a poll takes 1-3 s on a busy 2-core machine.
    assert len(poller.answers) >= 10, f"only {len(poller.answers)} Status polls during the churn"
    assert not_ready == [], f"{len(not_ready)} of {len(poller.answers)} polls NotReady: {not_ready[:3]}"
    assert reservations(node, network) == []
    print(f"\n{CHURN_PODS} pods x {CHURN_ROUNDS} started, stopped and removed at once: "
          f"{len(poller.answers)} Status polls, all NetworkReady")


def test_not_ready_while_the_range_is_full(node_factory, sandboxes, chain_plugins) -> None:
    """With the reference chain (v1.9.1, whose host-local has no STATUS) the node stays Ready."""
    status_fails = chain_plugins[0] == "ours"
    node = node_factory(str(SMALL_CIDR), namespaces=("k8s.io",))
    cri = sandboxes(node)
    network = _network(node)
    _wait_ready(cri, "NetworkReady on a fresh node")
    pods = [_run_pod(cri) for _ in range(SMALL_FREE - 1)]
    assert _ready(cri)[0], "NotReady with one address still free"

    pods.append(_run_pod(cri))
    assert len(reservations(node, network)) == SMALL_FREE
    ready, reason, message = _ready(cri)
    print(f"\nfull range: NetworkReady={ready} reason={reason} message={message}")
    if status_fails:
        first, last = SMALL_CIDR.network_address + 1, SMALL_CIDR.broadcast_address - 1  # the gateway's too
        assert (ready, reason, message) == (False, NOT_READY, (
            "Network plugin returns error: host-local: no free addresses left in "
            f"range set 0 ({first}-{last})"))
    else:
        assert (ready, reason, message) == (True, "", "")
    # Either way the next pod gets no address (and holds none afterwards).
    with pytest.raises(grpc.RpcError) as err:
        _run_pod(cri)
    assert "no IP addresses available" in str(err.value.details()), err.value.details()
    assert len(reservations(node, network)) == SMALL_FREE

    _remove_pod(cri, pods.pop())
    assert _ready(cri) == (True, "", ""), "still NotReady after a pod released its address"
    _run_pod(cri)
    assert _ready(cri)[0] is not status_fails


@contextlib.contextmanager
def _read_only(node: KindNode, path: str) -> Iterator[None]:
    """``path`` read-only in the node's mount namespace (a bind mount over itself), then writable
    again."""
    node.run("mkdir", "-p", path)
    node.run("mount", "--bind", path, path)
    try:
        node.run("mount", "-o", "remount,bind,ro", path)
        yield
    finally:
        node.run("umount", path)


@pytest.mark.parametrize(("version", "cni_version", "asks_status"), [
    ("2.3.4", "1.1.0", True),
    ("2.3.4", "1.0.0", False),
    ("1.6.20", "1.0.0", False),
], ids=["containerd-2.3.4-list-1.1.0", "containerd-2.3.4-list-1.0.0", "containerd-1.6.20"])
def test_read_only_store(node_factory, sandboxes, chain_plugins, version: str, cni_version: str,
                         asks_status: bool) -> None:
    """Only containerd 2.x with a list at 1.1.0 asks; only our host-local answers NotReady."""
    status_fails = asks_status and chain_plugins[0] == "ours"
    runtime = runtime_for(version)
    node = node_factory(None, namespaces=("k8s.io",), runtime=runtime)
    render_netconf(RO_CIDR, node.conf_dir, cni_version=cni_version)
    cri = sandboxes(node)
    network = _network(node)
    _wait_ready(cri, "NetworkReady once the config is written")
    running = _run_pod(cri)  # the store exists, with one reservation

    with _read_only(node, STORE):
        ready, reason, message = _ready(cri)
        print(f"\n{runtime.name}, list at {cni_version}, read-only store: NetworkReady={ready} "
              f"reason={reason} message={message}")
        if status_fails:
            assert (ready, reason, message) == (False, NOT_READY, (
                "Network plugin returns error: host-local: the IPAM data directory cannot be "
                f"written: {STORE}/{network}: Read-only file system"))
        else:
            assert (ready, reason, message) == (True, "", "")
        # Whatever the runtime says, no pod can get an address now.
        t0 = time.monotonic()
        with pytest.raises(grpc.RpcError) as err:
            _run_pod(cri)
        # (the reference's Go text is lower case)
        assert "read-only file system" in str(err.value.details()).lower(), err.value.details()
        assert time.monotonic() - t0 < 60
        assert _ready(cri)[0] is not status_fails

    assert _ready(cri) == (True, "", "")
    assert sorted(reservations(node, network)) == [cri.sandbox(running).ip]
    _run_pod(cri)
    assert len(reservations(node, network)) == 2
