"""A one-layer OCI image archive built from Debian's static busybox, for `ctr images import`.

There is no registry on these machines, so the end-to-end tests make their own image: one layer
holding ``/bin/busybox`` and a symlink per applet, an image config whose default command keeps
running (it doubles as the CRI sandbox image, which must not exit), a manifest, ``index.json`` and
``oci-layout``, packed as one tar that containerd imports.
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import struct
import subprocess
import tarfile
from pathlib import Path

BUSYBOX = Path("/bin/busybox")
IMAGE_NAME = "docker.io/pycni/busybox:e2e"
# A sandbox's process only has to outlive the test; `sleep` is killed with SIGKILL on stop.
DEFAULT_CMD = ["/bin/sleep", "86400"]
PT_INTERP = 3  # ELF program header type naming the dynamic loader

_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
         "s390x": "s390x", "riscv64": "riscv64"}


def _is_static(path: Path) -> bool:
    """A dynamic busybox would need the host's libc inside the image; Debian's busybox-static is not.

    An ELF file is dynamically linked exactly when it has a PT_INTERP program header (the loader
    to run it with); read from the file itself, as no `file` command may be installed."""
    with path.open("rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] not in (1, 2):
            return False
        wide, order = head[4] == 2, "<" if head[5] == 1 else ">"
        phoff, phentsize, phnum = (struct.unpack_from(order + "Q", head, 32)[0] if wide
                                   else struct.unpack_from(order + "I", head, 28)[0],
                                   *struct.unpack_from(order + "HH", head, 54 if wide else 42))
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    return all(struct.unpack_from(order + "I", table, i * phentsize)[0] != PT_INTERP for i in range(phnum))


def _applets(busybox: Path) -> list[str]:
    out = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True).stdout
    return sorted({a for a in out.split() if a and "/" not in a and a != "busybox"})


def _add(tar: tarfile.TarFile, name: str, *, kind: bytes, mode: int, data: bytes = b"",
         target: str = "") -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.mtime, info.uid, info.gid = kind, mode, 0, 0, 0
    if kind == tarfile.SYMTYPE:
        info.linkname = target
        tar.addfile(info)
    else:
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data) if data else None)


def _layer(busybox: Path) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("bin", "etc", "proc", "sys", "dev", "tmp", "run", "var", "root"):
            _add(tar, d, kind=tarfile.DIRTYPE, mode=0o1777 if d == "tmp" else 0o755)
        _add(tar, "bin/busybox", kind=tarfile.REGTYPE, mode=0o755, data=busybox.read_bytes())
        for applet in _applets(busybox):
            _add(tar, f"bin/{applet}", kind=tarfile.SYMTYPE, mode=0o777, target="busybox")
        _add(tar, "etc/passwd", kind=tarfile.REGTYPE, mode=0o644, data=b"root:x:0:0:root:/root:/bin/sh\n")
        _add(tar, "etc/group", kind=tarfile.REGTYPE, mode=0o644, data=b"root:x:0:\n")
    return buf.getvalue()


def _blob(tar: tarfile.TarFile, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    _add(tar, f"blobs/sha256/{digest}", kind=tarfile.REGTYPE, mode=0o644, data=data)
    return f"sha256:{digest}"


def _json(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def build_busybox_image(out: Path, *, name: str = IMAGE_NAME, busybox: Path = BUSYBOX) -> Path:
    """Write the image archive to ``out`` and return it. Raises ``RuntimeError`` when busybox is
    missing or dynamically linked."""
    if not busybox.is_file():
        raise RuntimeError(f"{busybox} missing (Debian package busybox-static)")
    if not _is_static(busybox):
        raise RuntimeError(f"{busybox} is dynamically linked; install busybox-static")
    arch = _ARCH.get(platform.machine(), platform.machine())
    layer = _layer(busybox)
    layer_digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = {
        "architecture": arch,
        "os": "linux",
        "config": {"Cmd": DEFAULT_CMD, "Env": ["PATH=/bin"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "history": [{"created_by": "pycni e2e: busybox-static", "created": "1970-01-01T00:00:00Z"}],
        "created": "1970-01-01T00:00:00Z",
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "blobs", kind=tarfile.DIRTYPE, mode=0o755)
        _add(tar, "blobs/sha256", kind=tarfile.DIRTYPE, mode=0o755)
        layer_ref = _blob(tar, layer)
        config_bytes = _json(config)
        config_ref = _blob(tar, config_bytes)
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_ref,
                       "size": len(config_bytes)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_ref,
                        "size": len(layer)}],
        }
        manifest_bytes = _json(manifest)
        manifest_ref = _blob(tar, manifest_bytes)
        index = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": manifest_ref,
                "size": len(manifest_bytes),
                "platform": {"architecture": arch, "os": "linux"},
                "annotations": {"io.containerd.image.name": name,
                                "org.opencontainers.image.ref.name": name.rsplit(":", 1)[-1]},
            }],
        }
        _add(tar, "index.json", kind=tarfile.REGTYPE, mode=0o644, data=_json(index))
        _add(tar, "oci-layout", kind=tarfile.REGTYPE, mode=0o644,
             data=_json({"imageLayoutVersion": "1.0.0"}))
    return out
