"""One-layer OCI images built from Debian's busybox: an archive for `ctr images import`, or the
blobs a test registry serves (``registry.py``).

There is no registry on these machines, so the end-to-end tests make their own images: one layer
holding ``/bin/busybox`` (with its shared libraries when it is the dynamic build), a symlink per
applet and any extra files, an image config with the image's default command, and a manifest.
``build_busybox_image`` packs Debian's static busybox with a command that keeps running (it doubles
as the CRI sandbox image, which must not exit) as one tar with ``index.json`` and ``oci-layout``.
``busybox_image`` returns the blobs of any such image; ``dynamic_busybox`` unpacks Debian's dynamic
build, which images must use where a spec looks at what /proc shows of the process (critest's
MaskedPaths spec fails with the static one).
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
import struct
import subprocess
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

BUSYBOX = Path("/bin/busybox")
IMAGE_NAME = "docker.io/pycni/busybox:e2e"
# A sandbox's process only has to outlive the test; `sleep` is killed with SIGKILL on stop.
DEFAULT_CMD = ["/bin/sleep", "86400"]
PT_INTERP = 3  # ELF program header type naming the dynamic loader
# Where `./build.sh deps test` keeps Debian's dynamic busybox package: it conflicts with
# busybox-static, so it is downloaded, never installed. apt's own cache is looked at too.
DEB_DIRS = (Path("/var/cache/pycni-debs"), Path("/var/cache/apt/archives"))
MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_TYPE = "application/vnd.oci.image.index.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar"
EPOCH = "1970-01-01T00:00:00Z"

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


def _shared_libraries(binary: Path) -> list[Path]:
    """The absolute paths of the libraries (and the loader) a dynamic executable loads, as ``ldd``
    resolves them on this host; the image holds them at the same paths."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True,
                         timeout=30).stdout
    paths = []
    for line in out.splitlines():
        words = line.replace("=>", " ").split()
        paths += [Path(w) for w in words if w.startswith("/")]
    return paths


def dynamic_busybox(dest: Path) -> Path:
    """Unpack Debian's dynamic busybox package (kept by ``./build.sh deps test``) into ``dest`` and
    return its executable. Raises ``RuntimeError`` when the package is not there."""
    debs = sorted(p for d in DEB_DIRS if d.is_dir() for p in d.glob("busybox_*.deb"))
    if not debs:
        raise RuntimeError("Debian's dynamic busybox package is not in "
                           f"{' or '.join(map(str, DEB_DIRS))} (./build.sh deps test downloads it)")
    binary = dest / "bin" / "busybox"
    if not binary.exists():
        subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(dest)], check=True, timeout=120,
                       capture_output=True)
    if _is_static(binary):
        raise RuntimeError(f"{debs[-1]} holds a static busybox")
    return binary


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


def _layer(busybox: Path, files: Mapping[str, bytes] = {}) -> bytes:
    """The root file system: busybox, its applets, its libraries when dynamic, then ``files``
    (relative path -> content; parent directories are made)."""
    libs = {str(lib).lstrip("/"): lib.read_bytes()
            for lib in ([] if _is_static(busybox) else _shared_libraries(busybox))}
    base = ("bin", "etc", "proc", "sys", "dev", "tmp", "run", "var", "root")
    dirs = sorted({str(parent) for name in (*libs, *files) for parent in Path(name).parents
                   if str(parent) != "." and str(parent) not in base})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in (*base, *dirs):
            _add(tar, d, kind=tarfile.DIRTYPE, mode=0o1777 if d == "tmp" else 0o755)
        _add(tar, "bin/busybox", kind=tarfile.REGTYPE, mode=0o755, data=busybox.read_bytes())
        for applet in _applets(busybox):
            _add(tar, f"bin/{applet}", kind=tarfile.SYMTYPE, mode=0o777, target="busybox")
        _add(tar, "etc/passwd", kind=tarfile.REGTYPE, mode=0o644, data=b"root:x:0:0:root:/root:/bin/sh\n")
        _add(tar, "etc/group", kind=tarfile.REGTYPE, mode=0o644, data=b"root:x:0:\n")
        for name, data in sorted(libs.items()):
            _add(tar, name, kind=tarfile.REGTYPE, mode=0o755, data=data)
        for name, data in sorted(files.items()):
            _add(tar, name, kind=tarfile.REGTYPE, mode=0o644, data=data)
    return buf.getvalue()


def _blob(tar: tarfile.TarFile, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    _add(tar, f"blobs/sha256/{digest}", kind=tarfile.REGTYPE, mode=0o644, data=data)
    return f"sha256:{digest}"


def _json(obj: object) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def oci_arch() -> str:
    """This machine's architecture as OCI names it (amd64, arm64, ...)."""
    return _ARCH.get(platform.machine(), platform.machine())


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class OciImage:
    """One image for one platform: its manifest and the blobs it names (config, layer)."""

    manifest: bytes
    blobs: Mapping[str, bytes]
    arch: str

    @property
    def digest(self) -> str:
        return digest_of(self.manifest)

    def index(self, annotations: Mapping[str, str] = {}) -> bytes:
        """An OCI image index naming this manifest for its platform (what a tag resolves to)."""
        entry = {"mediaType": MANIFEST_TYPE, "digest": self.digest, "size": len(self.manifest),
                 "platform": {"architecture": self.arch, "os": "linux"}}
        if annotations:
            entry["annotations"] = dict(annotations)
        return _json({"schemaVersion": 2, "mediaType": INDEX_TYPE, "manifests": [entry]})


def busybox_image(busybox: Path, cmd: Sequence[str] = DEFAULT_CMD, *,
                  files: Mapping[str, bytes] = {}, note: str = "busybox") -> OciImage:
    """The image of ``busybox`` (static, or dynamic with its libraries) plus ``files``, whose
    default command is ``cmd``."""
    arch = oci_arch()
    layer = _layer(busybox, files)
    config = _json({
        "architecture": arch,
        "os": "linux",
        "config": {"Cmd": list(cmd), "Env": ["PATH=/bin"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [digest_of(layer)]},
        "history": [{"created_by": f"pycni e2e: {note}", "created": EPOCH}],
        "created": EPOCH,
    })
    manifest = _json({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {"mediaType": CONFIG_TYPE, "digest": digest_of(config), "size": len(config)},
        "layers": [{"mediaType": LAYER_TYPE, "digest": digest_of(layer), "size": len(layer)}],
    })
    return OciImage(manifest, {digest_of(config): config, digest_of(layer): layer}, arch)


def build_busybox_image(out: Path, *, name: str = IMAGE_NAME, busybox: Path = BUSYBOX) -> Path:
    """Write the image archive to ``out`` and return it. Raises ``RuntimeError`` when busybox is
    missing or dynamically linked."""
    if not busybox.is_file():
        raise RuntimeError(f"{busybox} missing (Debian package busybox-static)")
    if not _is_static(busybox):
        raise RuntimeError(f"{busybox} is dynamically linked; install busybox-static")
    image = busybox_image(busybox, note="busybox-static")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "blobs", kind=tarfile.DIRTYPE, mode=0o755)
        _add(tar, "blobs/sha256", kind=tarfile.DIRTYPE, mode=0o755)
        for blob in (*image.blobs.values(), image.manifest):
            _blob(tar, blob)
        index = image.index({"io.containerd.image.name": name,
                             "org.opencontainers.image.ref.name": name.rsplit(":", 1)[-1]})
        _add(tar, "index.json", kind=tarfile.REGTYPE, mode=0o644, data=index)
        _add(tar, "oci-layout", kind=tarfile.REGTYPE, mode=0o644,
             data=_json({"imageLayoutVersion": "1.0.0"}))
    return out
