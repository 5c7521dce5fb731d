"""Asking the runtime which pod sandboxes it still holds: CRI `ListPodSandbox` over its unix socket.

Every failure (no socket, the runtime not answering in time, an RPC error, a paginated answer) is
one `RuntimeUnavailable` with a sentence an operator can act on: `pycni gc` must never take "could
not ask" for "no pods".
"""

from __future__ import annotations

import os
import stat
from typing import NamedTuple

DEFAULT_ENDPOINT = "unix:///run/containerd/containerd.sock"
DEFAULT_TIMEOUT = 10.0
STATES = {0: "ready", 1: "notready"}


class RuntimeUnavailable(Exception):
    """The runtime could not be asked, or its answer cannot be trusted to be complete."""


class Sandbox(NamedTuple):
    """A sandbox the runtime lists: its ID is the CNI container ID of its attachments."""

    id: str
    name: str
    namespace: str
    state: str
    created_at_ns: int


def socket_path(endpoint: str) -> str:
    """The socket file of a CRI endpoint (`unix:///path`, `unix:/path` or a bare path)."""
    if endpoint.startswith("unix://"):
        path = endpoint[len("unix://"):]
    elif endpoint.startswith("unix:"):
        path = endpoint[len("unix:"):]
    elif "://" in endpoint:
        raise RuntimeUnavailable(f"CRI endpoint {endpoint!r}: only unix sockets are supported "
                                 "(unix:///run/containerd/containerd.sock)")
    else:
        path = endpoint
    if not path.startswith("/"):
        raise RuntimeUnavailable(f"CRI endpoint {endpoint!r}: the socket path must be absolute")
    return path


def _check_socket(path: str) -> None:
    try:
        st = os.stat(path)
    except OSError as e:
        raise RuntimeUnavailable(f"cannot reach the runtime: {path}: {e.strerror} "
                                 "(is containerd running? see --cri-endpoint)") from None
    if not stat.S_ISSOCK(st.st_mode):
        raise RuntimeUnavailable(f"cannot reach the runtime: {path} is not a socket")


def list_sandboxes(endpoint: str = DEFAULT_ENDPOINT, timeout: float = DEFAULT_TIMEOUT) -> list[Sandbox]:
    """Every sandbox the runtime holds, ready or not (an empty filter)."""
    path = socket_path(endpoint)
    _check_socket(path)
    os.environ.setdefault("GRPC_VERBOSITY", "NONE")  # its C core would log connection errors to stderr
    try:
        import grpc

        from .stubs import StubsMissing, load
    except ImportError as e:
        raise RuntimeUnavailable(f"this build cannot speak CRI ({e.name} is missing)") from None
    try:
        pb2, pb2_grpc = load()
    except StubsMissing as e:
        raise RuntimeUnavailable(str(e)) from None
    channel = grpc.insecure_channel(f"unix://{path}")
    try:
        stub = pb2_grpc.RuntimeServiceStub(channel)
        resp = stub.ListPodSandbox(pb2.ListPodSandboxRequest(filter=pb2.PodSandboxFilter()),
                                   timeout=timeout, wait_for_ready=False)
    except grpc.RpcError as e:
        code = e.code() if callable(getattr(e, "code", None)) else None
        details = e.details() if callable(getattr(e, "details", None)) else str(e)
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            raise RuntimeUnavailable(f"the runtime at {path} did not answer ListPodSandbox within "
                                     f"{timeout:g}s") from None
        name = code.name if code is not None else "error"
        raise RuntimeUnavailable(f"ListPodSandbox at {path} failed: {name}: {details}") from None
    finally:
        channel.close()
    if resp.next_page_token:
        raise RuntimeUnavailable("the runtime answered ListPodSandbox with one page of several; "
                                 "pycni needs the whole list and does not page")
    sandboxes = [Sandbox(id=item.id, name=item.metadata.name, namespace=item.metadata.namespace,
                         state=STATES.get(item.state, str(item.state)), created_at_ns=item.created_at)
                 for item in resp.items]
    check_ids(sandboxes)
    return sandboxes


_ID_FIRST = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_ID_REST = _ID_FIRST | frozenset("_.-")


def well_formed_id(text: str) -> bool:
    """A container ID as libcni accepts one (`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`): what the runtime
    passed as CNI_CONTAINERID, hence what the plugins recorded."""
    return bool(text) and text[0] in _ID_FIRST and _ID_REST.issuperset(text)


def check_ids(sandboxes: list[Sandbox]) -> None:
    """RuntimeUnavailable when a listed ID is not a well-formed container ID (empty, padded, a
    newline): compared with what the node holds it would match nothing, and a live pod would be
    taken for gone. An answer that cannot be read with certainty is no answer."""
    bad = [s.id for s in sandboxes if not well_formed_id(s.id)]
    if bad:
        shown = ", ".join(repr(i) for i in bad[:3]) + (", ..." if len(bad) > 3 else "")
        raise RuntimeUnavailable(f"the runtime listed {len(bad)} sandbox ID(s) that are not container IDs "
                                 f"({shown}): its answer cannot be read with certainty")
