"""Every wait for a lock is bounded: a real flock held by another process, given up on in time."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from cni import flock
from cni.contract.errors import TRY_AGAIN_LATER, failed


def test_a_held_lock_is_given_up_on_after_the_bound(tmp_path, monkeypatch):
    path = tmp_path / "x.lock"
    path.touch()
    code = ("import fcntl, sys, time\nf = open(sys.argv[1])\nfcntl.flock(f, fcntl.LOCK_EX)\n"
            "print('held', flush=True)\nsys.stdin.read()\n")
    holder = subprocess.Popen([sys.executable, "-c", code, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        fd = flock.open_lock_file(str(path), 0o600)
        monkeypatch.setenv(flock.TIMEOUT_VAR, "0.3")
        start = time.monotonic()
        with pytest.raises(flock.LockTimeout) as caught, flock.FileLock(fd, path=str(path)):
            pass
        assert 0.25 < time.monotonic() - start < 10
        assert str(path) in str(caught.value) and flock.TIMEOUT_VAR in str(caught.value)
        assert failed(caught.value).code == TRY_AGAIN_LATER, "the dispatcher's answer: 11"
        holder.stdin.close()
        holder.wait(10)
        with flock.FileLock(fd, path=str(path)):  # released: taken at once
            pass
    finally:
        holder.kill()
        holder.wait()
