"""A minimal CRI client: the calls the kubelet makes to give a pod a network, over gRPC.

The stubs are compiled at test time by grpcio-tools from ``cri_subset.proto`` into a temporary
directory (generated code never enters the repository) and imported from there.
"""

from __future__ import annotations

import importlib
import json
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

PROTO = Path(__file__).resolve().with_name("cri_subset.proto")
RPC_TIMEOUT = 120.0


def compile_stubs(out_dir: Path) -> tuple[ModuleType, ModuleType]:
    """Generate ``cri_subset_pb2`` and ``cri_subset_pb2_grpc`` into ``out_dir`` and import them.

    Raises ``RuntimeError`` naming the missing package when grpcio or grpcio-tools is absent.
    """
    try:
        import grpc  # noqa: F401
        from grpc_tools import protoc
    except ImportError as exc:
        raise RuntimeError(f"{exc.name} missing (pip install grpcio grpcio-tools)") from None
    out_dir.mkdir(parents=True, exist_ok=True)
    import grpc_tools

    include = Path(grpc_tools.__file__).parent / "_proto"
    rc = protoc.main(["grpc_tools.protoc", f"-I{PROTO.parent}", f"-I{include}",
                      f"--python_out={out_dir}", f"--grpc_python_out={out_dir}", PROTO.name])
    if rc != 0:
        raise RuntimeError(f"protoc failed on {PROTO} (exit {rc})")
    sys.path.insert(0, str(out_dir))
    try:
        pb2 = importlib.import_module("cri_subset_pb2")
        pb2_grpc = importlib.import_module("cri_subset_pb2_grpc")
    finally:
        sys.path.remove(str(out_dir))
    return pb2, pb2_grpc


@dataclass
class Sandbox:
    """What the tests need of a running pod sandbox."""

    id: str
    ip: str
    netns: str
    pid: int
    cni_result: Any


class CriClient:
    """``RuntimeService`` over containerd's unix socket."""

    def __init__(self, socket: Path, pb2: ModuleType, pb2_grpc: ModuleType):
        import grpc

        self.pb2 = pb2
        self.channel = grpc.insecure_channel(f"unix://{socket}")
        self.stub = pb2_grpc.RuntimeServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()

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
        return Sandbox(id=sandbox_id, ip=resp.status.network.ip, netns=netns, pid=int(info.get("pid", 0)),
                       cni_result=info.get("cniResult"))

    def stop_pod(self, sandbox_id: str) -> None:
        self.stub.StopPodSandbox(self.pb2.StopPodSandboxRequest(pod_sandbox_id=sandbox_id),
                                 timeout=RPC_TIMEOUT)

    def remove_pod(self, sandbox_id: str) -> None:
        self.stub.RemovePodSandbox(self.pb2.RemovePodSandboxRequest(pod_sandbox_id=sandbox_id),
                                   timeout=RPC_TIMEOUT)
