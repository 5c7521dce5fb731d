"""host-local on-disk store: the reference's files byte for byte, atomic reservations, no way out."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import pytest

from cni.contract.errors import INVALID_CONFIG, IO_FAILURE, CNIError
from ipam import store as store_mod
from ipam.store import Store

FILE = 0o600  # reservation and last_reserved_ip files: the reference's 0600 (v1.4.0 on)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "networks"


def files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file() and not p.is_symlink()}


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def take(st: Store, names: list[str], cid: str = "c1", ifname: str = "eth0") -> str | None:
    got = st.reserve_first(((n, n) for n in names), cid, ifname)
    return got[0] if got else None


def test_layout_modes_and_exact_bytes(data_dir: Path):
    with Store(str(data_dir), "net1") as st, st.locked():
        assert take(st, ["10.1.2.2"], " c1 ") == "10.1.2.2"
        st.set_last_reserved(0, "10.1.2.2")
        assert take(st, ["2001:db8::2"]) == "2001:db8::2"
        st.set_last_reserved(1, "2001:db8::2")
    net = data_dir / "net1"
    assert files(net) == {
        "10.1.2.2": b"c1\r\neth0",
        "2001:db8::2": b"c1\r\neth0",
        "last_reserved_ip.0": b"10.1.2.2",
        "last_reserved_ip.1": b"2001:db8::2",
        "lock": b"",
    }
    assert mode(net) == 0o755
    assert mode(net / "lock") == 0o750
    for name in ("10.1.2.2", "2001:db8::2", "last_reserved_ip.0", "last_reserved_ip.1"):
        assert mode(net / name) == FILE, name
        assert os.lstat(net / name).st_nlink == 1, name


def test_taken_addresses_are_skipped_and_none_when_all_taken(data_dir: Path):
    with Store(str(data_dir), "n") as st, st.locked():
        assert take(st, ["10.0.0.2", "10.0.0.3"], "a") == "10.0.0.2"
        assert take(st, ["10.0.0.2", "10.0.0.3"], "b") == "10.0.0.3"
        assert take(st, ["10.0.0.2", "10.0.0.3"], "c") is None
        assert st.held_by("b", "eth0") == ["10.0.0.3"]
    assert files(data_dir / "n") == {"10.0.0.2": b"a\r\neth0", "10.0.0.3": b"b\r\neth0", "lock": b""}


def test_last_reserved_round_trip_is_bare_text(data_dir: Path):
    with Store(str(data_dir), "n") as st, st.locked():
        assert st.last_reserved(0) is None
        st.set_last_reserved(0, "10.0.0.7")
        st.set_last_reserved(0, "10.0.0.8")
        assert st.last_reserved(0) == "10.0.0.8"
        assert st.last_reserved(1) is None


def test_release_by_attachment_then_legacy_id_only(data_dir: Path):
    net = data_dir / "n"
    with Store(str(data_dir), "n") as st, st.locked():
        take(st, ["10.0.0.2"], "c1", "eth0")
        take(st, ["10.0.0.3"], "c1", "eth1")
        (net / "10.0.0.4").write_bytes(b"  c1 \n")          # older format, with whitespace
        (net / "10.0.0.5").write_bytes(b"c2")
        (net / "10.0.0.6").write_bytes(b"\nc1\r\neth0\n")   # whitespace around a current-format record
        st.set_last_reserved(0, "10.0.0.3")

        released, errors = st.release("c1", "eth0")
        assert (sorted(released), errors) == (["10.0.0.2", "10.0.0.6"], [])
        # Current-format files matched, so the id-only file stays until nothing else matches.
        released, _ = st.release("c1", "eth0")
        assert released == ["10.0.0.4"]
        assert st.release("c1", "eth0") == ([], [])
        assert st.release("unknown", "eth0") == ([], [])
    assert files(net) == {"10.0.0.3": b"c1\r\neth1", "10.0.0.5": b"c2", "last_reserved_ip.0": b"10.0.0.3",
                          "lock": b""}


def test_find_and_held_by_accept_both_formats(data_dir: Path):
    net = data_dir / "n"
    with Store(str(data_dir), "n") as st, st.locked():
        (net / "10.0.0.9").write_bytes(b"old")
        take(st, ["2001:db8::9"], "new", "net1")
        assert st.find("old", "eth0") and st.find("new", "net1")
        assert not st.find("new", "eth0")
        assert st.held_by("old", "whatever") == ["10.0.0.9"]


def test_gc_keeps_valid_and_bookkeeping_releases_the_rest(data_dir: Path):
    net = data_dir / "n"
    with Store(str(data_dir), "n") as st, st.locked():
        take(st, ["10.0.0.2"], "keep", "eth0")
        take(st, ["10.0.0.3"], "keep", "eth1")      # same container, other interface: not listed
        take(st, ["10.0.0.4"], "gone", "eth0")
        take(st, ["2001:db8::4"], "keep", "eth0")
        (net / "10.0.0.5").write_bytes(b"keep")       # older format: kept when the container is listed
        (net / "10.0.0.6").write_bytes(b"legacy-gone")
        (net / "10.0.0.7").write_bytes(b"")            # left empty by a killed writer
        st.set_last_reserved(0, "10.0.0.4")
        released, errors = st.gc({("keep", "eth0")})
    assert errors == []
    assert sorted(released) == ["10.0.0.3", "10.0.0.4", "10.0.0.6", "10.0.0.7"]
    assert files(net) == {"10.0.0.2": b"keep\r\neth0", "10.0.0.5": b"keep", "2001:db8::4": b"keep\r\neth0",
                          "last_reserved_ip.0": b"10.0.0.4", "lock": b""}


def test_gc_with_no_valid_attachment_releases_everything(data_dir: Path):
    with Store(str(data_dir), "n") as st, st.locked():
        take(st, ["10.0.0.2"], "a")
        take(st, ["10.0.0.3"], "b")
        st.set_last_reserved(0, "10.0.0.3")
        released, errors = st.gc(set())
        assert sorted(released) == ["10.0.0.2", "10.0.0.3"] and errors == []
        # Freed addresses are free again.
        assert take(st, ["10.0.0.2"], "c") == "10.0.0.2"
    assert files(data_dir / "n") == {"10.0.0.2": b"c\r\neth0", "last_reserved_ip.0": b"10.0.0.3", "lock": b""}


def test_gc_reports_every_failure_and_keeps_going(data_dir: Path, monkeypatch):
    with Store(str(data_dir), "n") as st, st.locked():
        for n, cid in (("10.0.0.2", "a"), ("10.0.0.3", "b"), ("10.0.0.4", "c")):
            take(st, [n], cid)
        real_unlink = os.unlink

        def flaky(name, *, dir_fd=None):
            if name == "10.0.0.3":
                raise PermissionError(errno.EACCES, "Permission denied")
            return real_unlink(name, dir_fd=dir_fd)

        monkeypatch.setattr(store_mod.sysapi, "unlink", flaky)
        stale, errors = st.gc(set())
        monkeypatch.undo()
    assert sorted(stale) == ["10.0.0.2", "10.0.0.3", "10.0.0.4"]
    assert errors == ["10.0.0.3: Permission denied"]
    assert files(data_dir / "n") == {"10.0.0.3": b"b\r\neth0", "lock": b""}


def test_temp_files_are_invisible_and_swept(data_dir: Path):
    net = data_dir / "n"
    with Store(str(data_dir), "n") as st, st.locked():
        stale = net / ".tmp-999-abcdef"
        stale.write_bytes(b"c9\r\neth0")
        assert st.reservations() == []
        assert st.release("c9", "eth0") == ([], [])
        assert st.gc(set()) == ([], [])
        assert stale.exists()
        st.sweep()
        assert not stale.exists()
        take(st, ["10.0.0.2"])
    assert sorted(p.name for p in net.iterdir()) == ["10.0.0.2", "lock"]


def test_planted_links_are_not_followed(data_dir: Path, tmp_path: Path):
    outside = tmp_path / "outside"
    outside.write_bytes(b"precious")
    net = data_dir / "n"
    net.mkdir(parents=True)
    (net / "10.0.0.2").symlink_to(outside)
    (net / "10.0.0.3").symlink_to(tmp_path / "dangling")
    (net / "last_reserved_ip.0").symlink_to(outside)
    os.mkfifo(net / "10.0.0.4")
    with Store(str(data_dir), "n") as st, st.locked():
        assert st.reservations() == []
        assert st.last_reserved(0) is None
        assert take(st, ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"], "c1") == "10.0.0.5"
        st.set_last_reserved(0, "10.0.0.5")
        assert st.gc(set()) == (["10.0.0.5"], [])
    assert outside.read_bytes() == b"precious"
    assert not (tmp_path / "dangling").exists()
    last = net / "last_reserved_ip.0"
    assert last.read_bytes() == b"10.0.0.5" and not last.is_symlink()
    assert (net / "10.0.0.2").is_symlink()


def test_planted_lock_link_is_refused(data_dir: Path, tmp_path: Path):
    net = data_dir / "n"
    net.mkdir(parents=True)
    (net / "lock").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(CNIError) as info:
        Store(str(data_dir), "n")
    assert info.value.code == IO_FAILURE
    assert not (tmp_path / "elsewhere").exists()


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "../x", "x\0y"])
def test_network_names_stay_one_directory(data_dir: Path, name: str):
    with pytest.raises(CNIError) as info:
        Store(str(data_dir), name)
    assert info.value.code == INVALID_CONFIG
    assert not data_dir.exists()


def test_unwritable_data_dir_is_an_io_failure(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"")
    with pytest.raises(CNIError) as info:
        Store(str(blocker), "n")
    assert info.value.code == IO_FAILURE
    assert "cannot open the IPAM data directory" in info.value.msg


def test_without_hard_links_it_falls_back_to_exclusive_create(data_dir: Path, monkeypatch):
    def no_links(*args, **kwargs):
        raise PermissionError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(store_mod.sysapi, "link", no_links)
    with Store(str(data_dir), "n") as st, st.locked():
        assert take(st, ["10.0.0.2"], "a") == "10.0.0.2"
        assert take(st, ["10.0.0.2", "10.0.0.3"], "b") == "10.0.0.3"
    assert files(data_dir / "n") == {"10.0.0.2": b"a\r\neth0", "10.0.0.3": b"b\r\neth0", "lock": b""}
    assert mode(data_dir / "n" / "10.0.0.3") == FILE


def test_lock_is_exclusive_across_processes(data_dir: Path):
    import fcntl

    with Store(str(data_dir), "n") as st, st.locked():
        fd = os.open(data_dir / "n" / "lock", os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    fd = os.open(data_dir / "n" / "lock", os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)


def test_probe_write_leaves_nothing(data_dir: Path):
    with Store(str(data_dir), "n") as st:
        st.probe_write()
    assert sorted(p.name for p in (data_dir / "n").iterdir()) == ["lock"]


def test_address_names():
    for name in ("10.0.0.1", "2001:db8::1", "::1"):
        assert store_mod.is_address_name(name)
    for name in ("lock", "last_reserved_ip.0", ".tmp-1-ab", "fe80::1%eth0", "10.0.0.1.bak", ""):
        assert not store_mod.is_address_name(name)


def test_reservations_are_owner_only_whatever_the_umask(data_dir: Path):
    """Under umask 000 a reservation (which names the pod's container) is still not world-readable."""
    old = os.umask(0)
    try:
        with Store(str(data_dir), "n") as st, st.locked():
            assert take(st, ["10.0.0.2"], "a") == "10.0.0.2"
            st.set_last_reserved(0, "10.0.0.2")
    finally:
        os.umask(old)
    assert mode(data_dir / "n" / "10.0.0.2") == 0o600
    assert mode(data_dir / "n" / "last_reserved_ip.0") == 0o600
