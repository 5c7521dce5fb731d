"""cni.sysapi's path helpers and environment behave as os's do (posixpath is the oracle): the
plugins use them in its place, so any difference would change a path they open or a message."""

from __future__ import annotations

import os
import posixpath
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from cni import sysapi

from .conftest import REPO

# Paths built from the parts that decide these functions: slashes (one, two, three), ".", "..",
# names, with empty parts between them; plus arbitrary text.
PART = st.sampled_from(["", "/", "//", "///", ".", "..", "a", "b.c", "...", " ", "é", "\udcff"])
PATHS = st.lists(PART, max_size=8).map("".join) | st.text(max_size=20)


@settings(max_examples=1000)
@given(PATHS, st.lists(PATHS, max_size=4))
def test_join_is_posixpaths(first, rest):
    assert sysapi.join(first, *rest) == posixpath.join(first, *rest)


@settings(max_examples=1000)
@given(PATHS)
def test_basename_dirname_normpath_are_posixpaths(path):
    assert sysapi.basename(path) == posixpath.basename(path)
    assert sysapi.dirname(path) == posixpath.dirname(path)
    assert sysapi.normpath(path) == posixpath.normpath(path)


@settings(max_examples=1000)
@given(PATHS)
def test_abspath_is_posixpaths(path):
    assert sysapi.abspath(path) == posixpath.abspath(path)


def test_file_tests_are_posixpaths(tmp_path):
    """Every kind of thing a path can name, symlinks to each, dangling and looping links, a NUL
    byte and an over-long name: exists/isdir/isfile and samefile agree with os.path."""
    (tmp_path / "file").write_bytes(b"x")
    (tmp_path / "dir").mkdir()
    os.mkfifo(tmp_path / "fifo")
    for name in ("file", "dir", "fifo", "/dev/null", "missing"):
        (tmp_path / f"to-{posixpath.basename(name)}").symlink_to(name if name.startswith("/") else
                                                               tmp_path / name)
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    candidates = [str(p) for p in tmp_path.iterdir()]
    candidates += ["", "/", "/dev/null", "/proc/self/ns/net", str(tmp_path / "file" / "below"),
                   f"{tmp_path}/a\0b", "x" * 5000, str(tmp_path / "dir" / ".." / "file")]
    for path in candidates:
        assert (sysapi.exists(path), sysapi.isdir(path), sysapi.isfile(path)) == \
            (os.path.exists(path), os.path.isdir(path), os.path.isfile(path)), path
    pairs = [(tmp_path / "file", tmp_path / "to-file"), (tmp_path / "file", tmp_path / "dir"),
             (tmp_path / "dir" / ".." / "file", tmp_path / "to-file")]
    for a, b in pairs:
        assert sysapi.samefile(str(a), str(b)) == os.path.samefile(a, b)
    for missing in (tmp_path / "missing", tmp_path / "to-missing", tmp_path / "loop"):
        try:
            os.path.samefile(missing, tmp_path / "file")
        except OSError as expected:
            try:
                sysapi.samefile(str(missing), str(tmp_path / "file"))
            except OSError as got:
                assert (type(got), got.errno, got.filename) == (type(expected), expected.errno,
                                                                 expected.filename)
            else:
                raise AssertionError(f"{missing}: no OSError")


def test_environ_is_os_environ_once_os_is_loaded(monkeypatch):
    """With os loaded (here, the operator command), sysapi.environ is os.environ itself, so a
    change made through either is seen by the other."""
    assert sysapi.environ is os.environ
    monkeypatch.setenv("PYCNI_SYSAPI_PROBE", "1")
    assert sysapi.environ["PYCNI_SYSAPI_PROBE"] == "1"


ENV_VALUES = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0"), max_size=12)


@settings(max_examples=40, deadline=None)
@given(st.dictionaries(st.from_regex(r"PYCNI_T[A-Z_]{0,6}", fullmatch=True),
                       ENV_VALUES | st.binary(max_size=8).filter(lambda b: b"\0" not in b), max_size=4))
def test_environ_without_os_decodes_as_os_does(extra):
    """In a process that never imports os (as a plugin call), sysapi.environ equals what
    os.environ gives for the same bytes, undecodable ones included (surrogateescape), under
    the UTF-8 mode the bundle's launcher runs in and under the C locale's default."""
    env = {k.encode(): (v if isinstance(v, bytes) else v.encode()) for k, v in extra.items()}
    env[b"PATH"] = b"/usr/bin:/bin"
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); from cni import sysapi; "
             "got = sorted(sysapi.environ.items()); loaded = 'os' in sys.modules; import os; "
             "print(repr((loaded, got == sorted(os.environ.items()), got)))")
    for mode in ("-Xutf8=1", "-Xutf8=0"):
        out = subprocess.run([sys.executable, "-I", "-S", mode, "-c", probe, str(REPO)], env=env,
                             capture_output=True, check=True).stdout
        loaded, same, got = eval(out)
        assert not loaded and same, got
        assert {k for k, _ in got} >= set(extra)
