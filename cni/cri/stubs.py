"""The Python stubs of `api.proto`: generated once by the build, imported by the CRI client.

`python -m cni.cri.stubs` (run by build.sh) writes `cni/cri/api_pb2.py` and `api_pb2_grpc.py`
beside the proto, where PyInstaller collects them with the rest of the package. Generating from the
repository root makes the generated code import its messages as `cni.cri.api_pb2`, a module of this
package, instead of a top-level `api_pb2`.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PROTO = os.path.join("cni", "cri", "api.proto")


class StubsMissing(RuntimeError):
    """The generated modules are absent and cannot be made here."""


def generate() -> list[str]:
    """Compile api.proto with grpcio-tools; returns the files written."""
    try:
        import grpc_tools
        from grpc_tools import protoc
    except ImportError as e:
        raise StubsMissing(f"{e.name} is missing: install grpcio-tools (./build.sh deps build)") from None
    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    args = ["grpc_tools.protoc", f"-I{ROOT}", f"-I{include}", f"--python_out={ROOT}",
            f"--grpc_python_out={ROOT}", os.path.join(ROOT, PROTO)]
    if protoc.main(args) != 0:
        raise StubsMissing(f"protoc failed on {os.path.join(ROOT, PROTO)}")
    return [os.path.join(HERE, name) for name in ("api_pb2.py", "api_pb2_grpc.py")]


def load(make: bool = False) -> tuple[ModuleType, ModuleType]:
    """(messages, services) modules; with `make`, generate them first when they are missing
    (running from the sources, as the tests do)."""
    try:
        return importlib.import_module("cni.cri.api_pb2"), importlib.import_module("cni.cri.api_pb2_grpc")
    except ImportError as e:
        if e.name not in ("cni.cri.api_pb2", "cni.cri.api_pb2_grpc") or not make:
            raise StubsMissing(f"the CRI stubs cannot be imported ({e}); build with ./build.sh") from None
    generate()
    importlib.invalidate_caches()
    return importlib.import_module("cni.cri.api_pb2"), importlib.import_module("cni.cri.api_pb2_grpc")


if __name__ == "__main__":
    try:
        for path in generate():
            print(os.path.relpath(path, ROOT))
    except StubsMissing as e:
        sys.exit(f"cni.cri.stubs: {e}")
