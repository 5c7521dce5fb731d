"""A stub container runtime on a real CRI socket, for `pycni status`/`gc`: ListPodSandbox answers
the sandbox IDs a test puts in the list it is given."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def stub_runtime(sock: Path) -> Iterator[tuple[str, list[str]]]:
    """(endpoint, ids): the runtime lists `ids` (change it at will) until the block ends."""
    from concurrent import futures

    import grpc

    # the messages only: the generated service module refuses a grpcio older than its generator,
    # and a stub server needs no more than one generic method
    pb2 = _messages()
    ids: list[str] = []

    def list_sandboxes(request, context):
        meta = pb2.PodSandboxMetadata(name="p", namespace="default")
        return pb2.ListPodSandboxResponse(items=[pb2.PodSandbox(id=i, metadata=meta) for i in ids])

    method = grpc.unary_unary_rpc_method_handler(
        list_sandboxes, request_deserializer=pb2.ListPodSandboxRequest.FromString,
        response_serializer=pb2.ListPodSandboxResponse.SerializeToString)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
        "runtime.v1.RuntimeService", {"ListPodSandbox": method}),))
    server.add_insecure_port(f"unix://{sock}")
    server.start()
    try:
        yield f"unix://{sock}", ids
    finally:
        server.stop(0)


def _messages():
    """The CRI messages (`cni.cri.api_pb2`), generated from the proto when the tree was not built."""
    import importlib

    try:
        return importlib.import_module("cni.cri.api_pb2")
    except ImportError:
        from cni.cri.stubs import generate

        generate()
        importlib.invalidate_caches()
        return importlib.import_module("cni.cri.api_pb2")
