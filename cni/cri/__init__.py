"""The runtime's side of the node: the CRI v1 API (`api.proto`), spoken over gRPC.

Only the operator command (`pycni status`, `pycni gc`) imports this package; no plugin call may,
since grpc alone costs more start-up than a whole ADD. The stubs `api_pb2*.py` are generated at
build time (`python -m cni.cri.stubs`) and are not kept in the repository.
"""
