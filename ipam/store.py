"""The on-disk store: the reference plugin's directory layout (`cni.layout.hostlocal`), shared safely.

`<dataDir>/<network>/` (mode 0755) holds one file per reserved address, `last_reserved_ip.<N>`
(both created 0600 less the umask, as the reference does since v1.4.0) and `lock`: `flock(LOCK_EX)`
on it serialises every change. The reference plugin takes the same lock, so the two can work on one
directory at the same time.

A reservation never appears half-written: its content goes to a temporary file first (a name that
can never parse as an address), which is then hard-linked to the address name. The link either
creates the whole file or fails with EEXIST when the address is taken. Temporary files left by a
killed process are swept under the lock. Entries of the directory are opened with O_NOFOLLOW and
checked with lstat semantics, so a planted symlink never leads outside the directory.
"""

from __future__ import annotations

import errno

from cni import safeopen, sysapi
from cni.contract.errors import INVALID_CONFIG, IO_FAILURE, TRY_AGAIN_LATER, CNIError
from cni.flock import FileLock, LockTimeout, open_lock_file
from cni.layout import hostlocal as layout
from cni.layout.hostlocal import content_for, is_address_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import TypeVar

    T = TypeVar("T")

DIR_MODE = 0o755
FILE_MODE = 0o600  # reservations and last_reserved_ip, as the reference creates them since v1.4.0
LOCK_MODE = 0o750
_READ_LIMIT = 65536

_O_DIR = sysapi.O_RDONLY | sysapi.O_DIRECTORY | sysapi.O_NOFOLLOW | sysapi.O_CLOEXEC
_O_NEW = sysapi.O_WRONLY | sysapi.O_CREAT | sysapi.O_EXCL | sysapi.O_NOFOLLOW | sysapi.O_CLOEXEC


def check_component(value: str, what: str) -> str:
    """A name used as one path component: never empty, '.', '..', or holding '/' or NUL."""
    if not value or value in (".", "..") or "/" in value or "\0" in value:
        raise CNIError(INVALID_CONFIG, f"invalid {what} {value!r}: not usable as a directory name")
    return value


def _io_error(what: str, e: OSError) -> CNIError:
    return CNIError(IO_FAILURE, f"{what}: {e.strerror or e}", getattr(e, "filename", "") or "")


def _foreign(path: str, what: str) -> CNIError:
    return CNIError(IO_FAILURE, f"refusing the IPAM data directory {path}: it is {what}",
                    "nothing was written; remove or fix it by hand")


def _lock_error(e: OSError) -> CNIError:
    if isinstance(e, LockTimeout):
        return CNIError(TRY_AGAIN_LATER, f"host-local: {e.strerror}", e.filename or "")
    return _io_error("cannot lock the IPAM data directory", e)


class Store:
    """One network's directory. Use as a context manager; take `locked()` around every change."""

    def __init__(self, data_dir: str, network: str, create: bool = True) -> None:
        check_component(network, "network name")
        self.path = sysapi.join(data_dir, network)
        self._fd = -1
        self._lock_fd = -1
        try:
            if create:
                safeopen.makedirs(self.path, DIR_MODE)
            self._fd = self._open_own_dir()
            self._lock_fd = open_lock_file(layout.LOCK_NAME, LOCK_MODE, dir_fd=self._fd)
        except OSError as e:
            self.close()
            raise _io_error(f"cannot open the IPAM data directory {self.path}", e) from None
        except CNIError:
            self.close()
            raise
        self._direct = False  # set when the filesystem refuses hard links

    def _open_own_dir(self) -> int:
        """The network directory, opened only when it is one we may write in: a real directory
        (a symlink would lead every write elsewhere) that belongs to us (root), as the plugin
        makes it. Anything else is refused with code 5: it will not change by retrying."""
        try:
            fd = sysapi.open(self.path, _O_DIR)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.ENOTDIR) and sysapi.S_ISLNK(sysapi.lstat(self.path).st_mode):
                raise _foreign(self.path, "a symbolic link, not a directory the plugin made") from None
            raise
        owner = sysapi.fstat(fd).st_uid
        if owner != sysapi.geteuid():
            sysapi.close(fd)
            raise _foreign(self.path, f"owned by uid {owner}, not by uid {sysapi.geteuid()} (root) as "
                           "the plugin makes it")
        return fd

    @staticmethod
    def exists(data_dir: str, network: str) -> bool:
        check_component(network, "network name")
        return sysapi.isdir(sysapi.join(data_dir, network))

    # ---- lifetime and lock --------------------------------------------------------------------
    def close(self) -> None:
        for fd in (self._lock_fd, self._fd):
            if fd >= 0:
                sysapi.close(fd)
        self._fd = self._lock_fd = -1

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def locked(self) -> FileLock:
        """Hold the directory's flock (the reference plugin's lock) for the `with` block; waiting
        for it is bounded (`cni.flock.lock_timeout`), then the call answers 11 naming the lock."""
        return FileLock(self._lock_fd, _lock_error, sysapi.join(self.path, layout.LOCK_NAME))

    # ---- reading ------------------------------------------------------------------------------
    def _names(self) -> list[tuple[str, bool]]:
        """(name, is a regular file) for each entry; symlinks are not regular files here."""
        with sysapi.scandir(self._fd) as it:
            return [(e.name, e.is_file(follow_symlinks=False)) for e in it]

    def _read(self, name: str) -> bytes | None:
        try:
            fd = safeopen.open_regular(name, sysapi.O_RDONLY, dir_fd=self._fd, follow=False)
        except OSError:
            return None
        try:
            return sysapi.read(fd, _READ_LIMIT)
        except OSError:
            return None
        finally:
            sysapi.close(fd)

    def reservations(self) -> list[tuple[str, bytes]]:
        """(address name, content) of every reservation, sorted by name like the reference's walk."""
        out = []
        for name, regular in sorted(self._names()):
            if regular and is_address_name(name):
                data = self._read(name)
                if data is not None:
                    out.append((name, data))
        return out

    def reserved_names(self) -> list[str]:
        """Names of all reservations, without reading them."""
        return [name for name, regular in self._names() if regular and is_address_name(name)]

    def last_reserved(self, range_index: int) -> str | None:
        """The text of last_reserved_ip.<N>, or None."""
        data = self._read(layout.last_reserved_name(range_index))
        if data is None:
            return None
        return data.decode("ascii", "replace")

    def held_by(self, container_id: str, ifname: str) -> list[str]:
        """Reservations of this attachment, in either file format."""
        new, old = content_for(container_id, ifname), layout.legacy_content_for(container_id)
        return [name for name, data in self.reservations() if data.strip() in (new, old)]

    def find(self, container_id: str, ifname: str) -> bool:
        return bool(self.held_by(container_id, ifname))

    # ---- writing (hold the lock) --------------------------------------------------------------
    def _temp(self, content: bytes) -> str:
        """A new file holding content, under a name no reader takes for a reservation."""
        while True:
            name = layout.temp_name(sysapi.getpid(), sysapi.urandom(6).hex())
            if self._write_new(name, content):
                return name

    def _unlink_quiet(self, name: str) -> None:
        try:  # noqa: SIM105 (no contextlib: cni/__init__.py)
            sysapi.unlink(name, dir_fd=self._fd)
        except OSError:
            pass

    def _create_direct(self, name: str, content: bytes) -> bool:
        """Where hard links are refused: O_EXCL create, as the reference plugin does."""
        return self._write_new(name, content)

    def _write_new(self, name: str, content: bytes) -> bool:
        """Create `name` exclusively and write all of content; False when it exists already.
        A failed write removes the file again."""
        try:
            fd = sysapi.open(name, _O_NEW, FILE_MODE, dir_fd=self._fd)
        except FileExistsError:
            return False
        try:
            view = memoryview(content)
            while view:
                view = view[sysapi.write(fd, view):]
        except BaseException:
            sysapi.close(fd)
            self._unlink_quiet(name)
            raise
        sysapi.close(fd)
        return True

    def reserve_first(self, candidates: Iterable[tuple[str, T]], container_id: str, ifname: str,
                      ) -> tuple[str, T] | None:
        """Take the first free address name among the candidates for this attachment.

        Returns the (name, token) pair taken, or None when every candidate is held.
        """
        content = content_for(container_id, ifname)
        try:
            tmp = self._temp(content)
        except OSError as e:
            raise _io_error("cannot write a reservation", e) from None
        try:
            for name, token in candidates:
                if self._direct:
                    if self._create_direct(name, content):
                        return name, token
                    continue
                try:
                    sysapi.link(tmp, name, src_dir_fd=self._fd, dst_dir_fd=self._fd, follow_symlinks=False)
                    return name, token
                except FileExistsError:
                    continue
                except OSError as e:
                    if e.errno in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV):
                        self._direct = True
                        if self._create_direct(name, content):
                            return name, token
                        continue
                    raise
            return None
        except OSError as e:
            raise _io_error(f"cannot reserve an address in {self.path}", e) from None
        finally:
            self._unlink_quiet(tmp)

    def set_last_reserved(self, range_index: int, name: str) -> None:
        """Record the address last handed out from range set N (atomically replaced)."""
        try:
            tmp = self._temp(name.encode())
            try:
                sysapi.rename(tmp, layout.last_reserved_name(range_index), src_dir_fd=self._fd,
                              dst_dir_fd=self._fd)
            except BaseException:
                self._unlink_quiet(tmp)
                raise
        except OSError as e:
            raise _io_error(f"cannot record the last reserved address in {self.path}", e) from None

    def remove(self, names: Iterable[str]) -> list[str]:
        """Delete reservations by name; returns error descriptions (a file already gone is fine)."""
        errors = []
        for name in names:
            try:
                sysapi.unlink(name, dir_fd=self._fd)
            except FileNotFoundError:
                pass
            except OSError as e:
                errors.append(f"{name}: {e.strerror}")
        return errors

    def release(self, container_id: str, ifname: str) -> tuple[list[str], list[str]]:
        """Release the attachment's reservations: (released names, errors).

        Files of the current format match first; only when none does are files holding just the
        container ID (the older format) released, as the reference plugin does.
        """
        entries = self.reservations()
        new = content_for(container_id, ifname)
        names = [name for name, data in entries if data.strip() == new]
        if not names:
            old = layout.legacy_content_for(container_id)
            names = [name for name, data in entries if data.strip() == old]
        errors = self.remove(names)
        return names, errors

    def sweep(self) -> None:
        """Delete temporary files left by a process killed while it held the lock."""
        for name, _ in self._names():
            if layout.is_temp_name(name):
                self._unlink_quiet(name)

    def gc(self, valid: set[tuple[str, str]], keep_newer_than: float | None = None,
           ) -> tuple[list[str], list[str]]:
        """Release every reservation whose attachment is not in `valid`: (released names, errors).

        A file in the older format (container ID only) stays when any valid attachment has that
        container ID. `lock` and `last_reserved_ip.*` are never touched. With `keep_newer_than`
        (a time), a reservation written at or after it stays too: an ADD the caller's list of valid
        attachments could not know of yet.
        """
        valid_ids = {cid for cid, _ in valid}
        stale = []
        for name, data in self.reservations():
            cid, ifname = layout.owner_of(data)
            keep = (cid, ifname) in valid if ifname is not None else cid in valid_ids
            if not keep and keep_newer_than is not None:
                try:
                    mtime = sysapi.stat(name, dir_fd=self._fd, follow_symlinks=False).st_mtime
                    keep = mtime >= keep_newer_than
                except OSError:
                    keep = True  # released meanwhile, or unreadable: not ours to judge
            if not keep:
                stale.append(name)
        return stale, self.remove(stale)

    # ---- health ---------------------------------------------------------------------------------
    def probe_write(self) -> None:
        """Make what one more reservation makes, then remove it: raises OSError when ADD could not.
        Take `locked()` around it, as around a change: a locked sweep removes temporary files.

        An ADD writes a temporary file with content (an inode and a data block), links it under the
        address (a directory entry, which a tmpfs counts as an inode) and writes last_reserved_ip
        through another temporary file (a data block). An empty file alone would pass on a disk
        whose blocks are all used.
        """
        content = content_for("0" * 64, "eth0")
        first = self._temp(content)
        names = [first]
        try:
            if not self._direct:
                linked = first + "-link"
                try:
                    sysapi.link(first, linked, src_dir_fd=self._fd, dst_dir_fd=self._fd,
                                follow_symlinks=False)
                    names.append(linked)
                except OSError as e:
                    if e.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV):
                        raise
            names.append(self._temp(content))
        finally:
            for name in names:
                self._unlink_quiet(name)
