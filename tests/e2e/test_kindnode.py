"""The emulated node's own teardown: whatever state a failed test leaves containerd in, stopping
the node leaves no process, namespace, mount or file behind."""

from __future__ import annotations

import os
import signal

from helpers import netns_exists, unique_name
from kindnode import KindNode, _procs_in_mount_ns, _state

POD_CIDR = "10.244.9.0/24"


def _alive(pid: int) -> bool:
    return _state(pid) not in (None, "Z", "X")


def test_stop_after_containerd_was_killed_with_pods_running(node_factory, cri_factory) -> None:
    node: KindNode = node_factory(POD_CIDR, namespaces=("default", "k8s.io"))
    cri = cri_factory(node)
    sandbox = cri.sandbox(cri.run_pod(unique_name("pod-", 8)))
    ctr_id = unique_name("pycni-ctr-", 8)
    node.ctr("run", "-d", "--cni", "docker.io/pycni/busybox:e2e", ctr_id, "sleep", "600")
    assert node.proc is not None and node.mnt_ns is not None
    shims = _procs_in_mount_ns(node.mnt_ns) - {node.proc.pid}
    container_pid = node.task_pid(ctr_id)
    assert shims and container_pid and _alive(sandbox.pid) and _alive(container_pid)

    os.kill(node.proc.pid, signal.SIGKILL)  # containerd dies: no CRI, no ctr from here on
    node.proc.wait(timeout=10)
    node.stop()

    for pid in (*shims, sandbox.pid, container_pid):
        assert not _alive(pid), f"process {pid} survived the node"
    assert not netns_exists(node.name)
    assert not node.tmp.exists()
    assert not _procs_in_mount_ns(node.mnt_ns)
