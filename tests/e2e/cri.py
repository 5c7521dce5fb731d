"""A minimal CRI client: the calls the kubelet makes to give a pod a network, over gRPC.

It speaks the product's own CRI subset (``cni/cri/api.proto``, the one `pycni gc` lists sandboxes
with): the stubs build.sh generates from it, generated here the same way when the tests run from
a checkout that was not built yet.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[2]
RPC_TIMEOUT = 120.0


def load_stubs() -> tuple[ModuleType, ModuleType]:
    """The product's ``cni.cri.api_pb2`` and ``api_pb2_grpc`` (generated when missing).

    Raises ``RuntimeError`` naming the missing package when grpcio or grpcio-tools is absent.
    """
    try:
        import grpc  # noqa: F401
    except ImportError as exc:
        raise RuntimeError(f"{exc.name} missing (pip install grpcio grpcio-tools)") from None
    from cni.cri.stubs import StubsMissing, load

    try:
        return load(make=True)
    except StubsMissing as exc:
        raise RuntimeError(str(exc)) from None


@dataclass
class Sandbox:
    """What the tests need of a running pod sandbox."""

    id: str
    ip: str
    netns: str
    pid: int
    cni_result: Any
    additional_ips: tuple[str, ...] = ()  # a dual-stack pod's other family

    @property
    def ips(self) -> tuple[str, ...]:
        return (self.ip, *self.additional_ips)


class CriClient:
    """``RuntimeService`` over containerd's unix socket."""

    def __init__(self, socket: Path, pb2: ModuleType, pb2_grpc: ModuleType):
        import grpc

        self.pb2 = pb2
        self.channel = grpc.insecure_channel(f"unix://{socket}")
        self.stub = pb2_grpc.RuntimeServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def list_sandbox_ids(self) -> set[str]:
        """``ListPodSandbox`` with no filter: every sandbox the runtime holds, ready or not."""
        resp = self.stub.ListPodSandbox(self.pb2.ListPodSandboxRequest(), timeout=RPC_TIMEOUT)
        return {item.id for item in resp.items}

    def version(self) -> Any:
        return self.stub.Version(self.pb2.VersionRequest(version="v1"), timeout=RPC_TIMEOUT)

    def conditions(self) -> dict[str, Any]:
        """``Status``: the runtime's conditions by type (RuntimeReady, NetworkReady)."""
        resp = self.stub.Status(self.pb2.StatusRequest(verbose=False), timeout=RPC_TIMEOUT)
        return {c.type: c for c in resp.status.conditions}

    def run_pod(self, name: str, *, namespace: str = "default", annotations: dict[str, str] | None = None,
                labels: dict[str, str] | None = None, log_dir: str = "",
                host_ports: dict[int, int] | None = None) -> str:
        """``RunPodSandbox`` as the kubelet sends it (metadata, hostname, annotations, TCP hostPorts
        as {container port: host port}); the sandbox id."""
        pb2 = self.pb2
        ports = [pb2.PortMapping(protocol=pb2.TCP, container_port=c, host_port=h)
                 for c, h in (host_ports or {}).items()]
        config = pb2.PodSandboxConfig(
            metadata=pb2.PodSandboxMetadata(name=name, uid=str(uuid.uuid4()), namespace=namespace,
                                            attempt=0),
            hostname=name,
            log_directory=log_dir,
            labels=labels or {},
            annotations=annotations or {},
            port_mappings=ports,
        )
        resp = self.stub.RunPodSandbox(pb2.RunPodSandboxRequest(config=config), timeout=RPC_TIMEOUT)
        return resp.pod_sandbox_id

    def status(self, sandbox_id: str) -> Any:
        return self.stub.PodSandboxStatus(
            self.pb2.PodSandboxStatusRequest(pod_sandbox_id=sandbox_id, verbose=True), timeout=RPC_TIMEOUT)

    def sandbox(self, sandbox_id: str) -> Sandbox:
        """Status plus containerd's verbose info: the sandbox pid, netns path and CNI result."""
        resp = self.status(sandbox_id)
        info = json.loads(resp.info.get("info", "{}"))
        netns = ""
        for ns in info.get("runtimeSpec", {}).get("linux", {}).get("namespaces", []):
            if ns.get("type") == "network":
                netns = ns.get("path", "")
        network = resp.status.network
        return Sandbox(id=sandbox_id, ip=network.ip, netns=netns, pid=int(info.get("pid", 0)),
                       cni_result=info.get("cniResult"),
                       additional_ips=tuple(a.ip for a in network.additional_ips))

    def stop_pod(self, sandbox_id: str) -> None:
        self.stub.StopPodSandbox(self.pb2.StopPodSandboxRequest(pod_sandbox_id=sandbox_id),
                                 timeout=RPC_TIMEOUT)

    def remove_pod(self, sandbox_id: str) -> None:
        self.stub.RemovePodSandbox(self.pb2.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id),
                                   timeout=RPC_TIMEOUT)
