"""Run a shell script as root in a throw-away KVM guest that boots Debian's kernel on this machine's root.

The kernel is Debian's ``linux-image-amd64``, fetched with ``apt-get download`` and unpacked with
``dpkg-deb -x`` into a directory the caller chooses: nothing is installed into /boot or /lib/modules.
The guest boots from a small initramfs written here (the static busybox and the modules for virtio,
9p and overlayfs), mounts this machine's ``/`` read-only over 9p with a tmpfs overlay on top, so the
same Python, pytest, repository and plugins are there and every write stays in the guest's memory
(/tmp and /run are fresh tmpfs), and links the kernel's modules under /lib/modules/<version> so
modprobe and the kernel's module autoloading work. A second 9p share, a host directory, carries the
script in and its output and exit status out. The guest has no NIC.

Needs: root, /dev/kvm, ``qemu-system-x86`` and ``busybox-static`` (Debian packages), apt-get.
"""

from __future__ import annotations

import gzip
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

KERNEL_PACKAGE = "linux-image-amd64"
QEMU = "qemu-system-x86_64"
BUSYBOX = Path("/usr/bin/busybox")
# What the initramfs loads (with their dependencies) to mount the host's root.
BOOT_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "overlay")
ROOT_TAG, SHARE_TAG = "pycniroot", "pycnishare"
GUEST_SHARE = "/pycni-vm"  # where the guest sees the shared host directory
EXIT_FILE, LOG_FILE, SCRIPT_FILE = "exit-status", "output.log", "script.sh"


class GuestError(RuntimeError):
    """The guest could not be prepared or booted (not: the script inside failed)."""


def missing_requirements() -> list[str]:
    """What this machine lacks to run a guest, as readable reasons (empty when all is there)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("not root")
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        missing.append("no usable /dev/kvm")
    if shutil.which(QEMU) is None:
        missing.append(f"{QEMU} not found (Debian package qemu-system-x86)")
    if not BUSYBOX.is_file():
        missing.append(f"{BUSYBOX} not found (Debian package busybox-static)")
    for tool in ("apt-get", "apt-cache", "dpkg-deb", "depmod"):
        if shutil.which(tool) is None:
            missing.append(f"{tool} not found")
    return missing


def _run(argv: list[str], *, timeout: float, cwd: Path | None = None) -> str:
    try:
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise GuestError(f"{shlex.join(argv)} timed out after {timeout:.0f} s") from exc
    if proc.returncode != 0:
        raise GuestError(f"{shlex.join(argv)} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}")
    return proc.stdout


# ---------------------------------------------------------------- the kernel

@dataclass(frozen=True)
class Kernel:
    version: str  # uname -r in the guest, e.g. 6.1.0-56-amd64
    vmlinuz: Path
    modules: Path  # .../lib/modules/<version>, with modules.dep


def _kernel_package_name(timeout: float) -> str:
    """The versioned package the metapackage depends on (linux-image-6.1.0-NN-amd64)."""
    for attempt in range(2):
        try:
            out = _run(["apt-cache", "depends", KERNEL_PACKAGE], timeout=timeout)
        except GuestError:
            out = ""
        m = re.search(r"Depends:\s*(linux-image-\S+)", out)
        if m:
            return m.group(1)
        if attempt == 0:  # no package lists yet
            _run(["apt-get", "update", "-qq"], timeout=timeout)
    raise GuestError(f"apt-cache does not know {KERNEL_PACKAGE}")


def fetch_kernel(cache: Path, *, timeout: float = 300) -> Kernel:
    """Debian's current kernel, unpacked into ``cache``; later calls with the same directory reuse it.

    The guest finds the modules in the share, or at the same path if ``cache`` is elsewhere on this
    machine's root (not under /tmp or /run). Stale package lists may name a kernel build the archive
    no longer serves: then the lists are refreshed and the current build fetched.
    """
    try:
        return _fetch_kernel(cache, timeout)
    except GuestError:
        _run(["apt-get", "update", "-qq"], timeout=timeout)
        return _fetch_kernel(cache, timeout)


def _fetch_kernel(cache: Path, timeout: float) -> Kernel:
    package = _kernel_package_name(timeout)
    version = package.removeprefix("linux-image-")
    target = cache / package
    kernel = Kernel(version, target / "boot" / f"vmlinuz-{version}", target / "lib" / "modules" / version)
    if (target / ".complete").exists():
        return kernel
    cache.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{package}-", dir=cache))
    try:
        _run(["apt-get", "download", "-qq", package], cwd=work, timeout=timeout)
        (deb,) = work.glob("*.deb")
        tree = work / "tree"
        _run(["dpkg-deb", "-x", str(deb), str(tree)], timeout=timeout)
        deb.unlink()
        _run(["depmod", "-b", str(tree), version], timeout=timeout)  # the package's postinst does this
        (tree / ".complete").touch()
        shutil.rmtree(target, ignore_errors=True)
        tree.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if not kernel.vmlinuz.is_file() or not (kernel.modules / "modules.dep").is_file():
        raise GuestError(f"{package} unpacked into {target} without {kernel.vmlinuz.name} or modules.dep")
    return kernel


def module_closure(kernel: Kernel, names: tuple[str, ...] | list[str]) -> list[str]:
    """Paths (relative to the modules directory) of ``names`` and their dependencies, each after
    what it needs, in the order to insmod them."""
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in (kernel.modules / "modules.dep").read_text().splitlines():
        path, _, rest = line.partition(":")
        deps[path] = rest.split()
        by_name[Path(path).name.split(".ko")[0].replace("-", "_")] = path
    order: list[str] = []

    def visit(path: str) -> None:
        if path in order:
            return
        for dep in deps[path]:
            visit(dep)
        order.append(path)

    for name in names:
        key = name.replace("-", "_")
        if key not in by_name:
            raise GuestError(f"module {name} is not in {kernel.modules} (built in?)")
        visit(by_name[key])
    return order


# ---------------------------------------------------------------- the initramfs

def _cpio_entry(name: str, mode: int, data: bytes = b"", *, ino: int,
                rdev: tuple[int, int] = (0, 0)) -> bytes:
    """One file of a newc cpio archive, the initramfs format; device nodes need no mknod here."""
    fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name) + 1, 0]
    header = b"070701" + b"".join(b"%08X" % f for f in fields)
    out = header + name.encode() + b"\0"
    out += b"\0" * (-len(out) % 4) + data
    return out + b"\0" * (-len(out) % 4)


def _init_script(modules: list[str]) -> str:
    insmods = "\n".join(f"insmod /modules/{Path(m).name} || fail 'insmod {Path(m).name}'" for m in modules)
    return f"""#!/bin/sh
export PATH=/bin
fail() {{ echo "pycni-vm: $*"; echo o > /proc/sysrq-trigger; sleep 5; exit 1; }}
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
{insmods}
try_mount() {{
  i=0
  until mount "$@"; do
    i=$((i + 1)); [ $i -lt 20 ] || return 1
    sleep 0.1
  done
}}
try_mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=loose,ro {ROOT_TAG} /lower \\
  || fail "mounting the host's root"
mount -t tmpfs -o mode=755 tmpfs /rw || fail "tmpfs"
mkdir /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot || fail "overlay"
mkdir -p /newroot{GUEST_SHARE}
try_mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 {SHARE_TAG} /newroot{GUEST_SHARE} \\
  || fail "mounting the shared directory"
umount /proc /sys /dev
exec switch_root /newroot /bin/sh {GUEST_SHARE}/{SCRIPT_FILE}
"""


def build_initramfs(kernel: Kernel, path: Path) -> None:
    modules = module_closure(kernel, BOOT_MODULES)
    entries = [("dev", 0o40755), ("proc", 0o40755), ("sys", 0o40755), ("bin", 0o40755),
               ("modules", 0o40755), ("lower", 0o40755), ("rw", 0o40755), ("newroot", 0o40755)]
    blobs = []
    ino = 1
    for name, mode in entries:
        blobs.append(_cpio_entry(name, mode, ino=ino))
        ino += 1
    blobs.append(_cpio_entry("dev/console", 0o20600, ino=ino, rdev=(5, 1)))
    blobs.append(_cpio_entry("bin/busybox", 0o100755, BUSYBOX.read_bytes(), ino=ino + 1))
    ino += 2
    for applet in ("sh", "mount", "umount", "mkdir", "insmod", "sleep", "switch_root", "echo"):
        blobs.append(_cpio_entry(f"bin/{applet}", 0o120777, b"busybox", ino=ino))
        ino += 1
    for m in modules:
        data = (kernel.modules / m).read_bytes()
        blobs.append(_cpio_entry(f"modules/{Path(m).name}", 0o100644, data, ino=ino))
        ino += 1
    blobs.append(_cpio_entry("init", 0o100755, _init_script(modules).encode(), ino=ino))
    blobs.append(_cpio_entry("TRAILER!!!", 0, ino=0))
    path.write_bytes(gzip.compress(b"".join(blobs), compresslevel=1))


# ---------------------------------------------------------------- a run

@dataclass
class GuestRun:
    exit_status: int | None  # the script's, None when it did not finish
    output: str  # what the script wrote to its stdout and stderr
    console: str  # the guest's serial console: kernel messages, the initramfs' errors
    qemu: str  # qemu's own stdout and stderr
    seconds: float
    timed_out: bool

    def describe(self) -> str:
        status = "timed out" if self.timed_out else f"exit status {self.exit_status}"
        return (f"guest run: {status} after {self.seconds:.1f} s\n"
                f"---- script output ----\n{self.output[-20000:]}\n"
                f"---- guest console ----\n{self.console[-8000:]}\n"
                f"---- qemu ----\n{self.qemu[-4000:]}")


def _guest_path(path: Path, share: Path) -> str:
    """Where the guest sees a host path: inside the share under GUEST_SHARE, elsewhere as is (but not
    under /tmp or /run, which are the guest's own)."""
    try:
        return f"{GUEST_SHARE}/{path.relative_to(share)}"
    except ValueError:
        return str(path)


def _stage2(kernel: Kernel, script: str, timeout: float, share: Path) -> str:
    """The script run after switch_root: mounts a usable system, runs the caller's script with its
    output to the share and a time limit, records the status, powers off."""
    out = f"{GUEST_SHARE}/{LOG_FILE}"
    modules = _guest_path(kernel.modules, share)
    return f"""#!/bin/sh
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
mkdir -p /lib/modules && ln -sfn {shlex.quote(modules)} /lib/modules/{kernel.version}
ip link set lo up
cat > /tmp/pycni-vm-script.sh <<'PYCNI_VM_SCRIPT_END'
{script}
PYCNI_VM_SCRIPT_END
timeout -k 5 {int(timeout)} /bin/sh -e /tmp/pycni-vm-script.sh > {out} 2>&1 < /dev/null
echo $? > {GUEST_SHARE}/{EXIT_FILE}
sync
echo o > /proc/sysrq-trigger
sleep 10
"""


def run_in_guest(kernel: Kernel, script: str, *, share: Path, timeout: float = 180, memory_mb: int = 2048,
                 cpus: int | None = None) -> GuestRun:
    """Boot the guest, run ``script`` (/bin/sh -e, as root, cwd /) and power off.

    ``share``, a host directory the caller may put files into first (the kernel too), is
    ``GUEST_SHARE`` in the guest; this module's own files go there as well. The script gets
    ``timeout`` less a margin for booting; qemu itself is killed at ``timeout``.
    """
    cpus = cpus or min(os.cpu_count() or 1, 4)
    work = Path(tempfile.mkdtemp(prefix="pycni-vm-"))
    try:
        initramfs = work / "initramfs.gz"
        build_initramfs(kernel, initramfs)
        (share / SCRIPT_FILE).write_text(_stage2(kernel, script, max(timeout - 30, 10), share))
        console = work / "console.log"
        argv = [
            QEMU, "-nodefaults", "-no-user-config", "-no-reboot", "-display", "none",
            *accel_args(), "-m", str(memory_mb), "-smp", str(cpus),
            "-kernel", str(kernel.vmlinuz), "-initrd", str(initramfs),
            "-append", "console=ttyS0 quiet loglevel=4 panic=-1 oops=panic",
            "-serial", f"file:{console}",
            "-virtfs", f"local,path=/,mount_tag={ROOT_TAG},security_model=none,readonly=on,multidevs=remap",
            "-virtfs", f"local,path={share},mount_tag={SHARE_TAG},security_model=none,multidevs=remap",
        ]
        start = time.monotonic()
        timed_out = False
        try:
            proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False,
                                  stdin=subprocess.DEVNULL)
            qemu = f"$ {shlex.join(argv)}\nexit status {proc.returncode}\n{proc.stdout}{proc.stderr}"
        except subprocess.TimeoutExpired as exc:  # subprocess.run has killed qemu
            timed_out = True
            qemu = f"$ {shlex.join(argv)}\nkilled after {timeout:.0f} s\n{exc.stdout or ''}{exc.stderr or ''}"
        seconds = time.monotonic() - start

        def read(p: Path) -> str:
            return p.read_text(errors="replace") if p.exists() else ""

        status_text = read(share / EXIT_FILE).strip()
        return GuestRun(int(status_text) if status_text.isdigit() else None, read(share / LOG_FILE),
                        read(console), qemu, seconds, timed_out)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def accel_args() -> list[str]:
    """KVM with a hardware-virtualizing kvm module; software emulation (TCG) otherwise.

    A machine that is itself a guest may offer /dev/kvm through PVM (kvm_pvm), which runs only
    kernels built as PVM guests: Debian's hangs right after decompressing. ``$PYCNI_VM_ACCEL``
    (kvm or tcg) overrides the choice.
    """
    accel = os.environ.get("PYCNI_VM_ACCEL", "")
    if not accel:
        hw = any(Path("/sys/module", m).exists() for m in ("kvm_intel", "kvm_amd"))
        accel = "kvm" if hw and os.access("/dev/kvm", os.R_OK | os.W_OK) else "tcg"
    if accel == "kvm":
        return ["-accel", "kvm", "-cpu", "host,-arch-capabilities"]
    return ["-accel", "tcg,thread=multi", "-cpu", "max"]
