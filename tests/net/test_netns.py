"""Entering namespaces, handles bound to them, and the netns checks."""

from __future__ import annotations

import os
import threading

import pytest

from cni.net import link, netns

from .conftest import NS, open_fds


def _my_netns() -> tuple[int, int]:
    st = os.stat(netns.SELF_NETNS)
    return st.st_dev, st.st_ino


def test_entered_switches_and_returns(ns: NS) -> None:
    home = _my_netns()
    target = os.stat(ns.path)
    with netns.entered(ns.path):
        assert _my_netns() == (target.st_dev, target.st_ino)
        assert netns.same_as_current(ns.path)
    assert _my_netns() == home
    assert not netns.same_as_current(ns.path)


def test_entered_returns_after_an_exception(ns: NS) -> None:
    home = _my_netns()
    before = open_fds()
    with pytest.raises(ZeroDivisionError), netns.entered(ns.path):
        1 / 0  # noqa: B018
    assert _my_netns() == home
    assert open_fds() == before


def test_entered_missing_path_raises_and_stays(tmp_path: os.PathLike) -> None:
    home = _my_netns()
    with pytest.raises(FileNotFoundError), netns.entered("/var/run/netns/pycni-t-missing"):
        pass
    with pytest.raises(OSError) as info, netns.entered("/etc/hostname"):
        pass
    assert info.value.errno == 22 and "not a network namespace" in str(info.value)
    assert _my_netns() == home


def test_entered_only_moves_this_thread(ns: NS) -> None:
    home = _my_netns()
    seen: list[tuple[int, int]] = []
    go = threading.Event()

    def other() -> None:
        go.wait(10)
        seen.append(_my_netns())

    t = threading.Thread(target=other)
    t.start()  # started before entering: setns(2) does not reach it
    with netns.entered(ns.path):
        go.set()
        t.join()
    assert seen == [home]


def test_is_netns(ns: NS, tmp_path: os.PathLike) -> None:
    assert netns.is_netns(ns.path)
    assert netns.is_netns("/proc/self/ns/net")
    assert not netns.is_netns("/proc/self/ns/uts")  # a namespace, but not a network one
    assert not netns.is_netns("/etc/hostname")
    assert not netns.is_netns(str(tmp_path))
    assert not netns.is_netns("/var/run/netns/pycni-t-missing")


def test_same_as_current() -> None:
    assert netns.same_as_current("/proc/self/ns/net")
    assert netns.same_as_current(f"/proc/{os.getpid()}/ns/net")


def test_netns_fd(ns: NS) -> None:
    fd = netns.netns_fd(ns.path)
    try:
        st = os.fstat(fd)
        assert (st.st_dev, st.st_ino) == (os.stat(ns.path).st_dev, os.stat(ns.path).st_ino)
        assert not os.get_inheritable(fd)
    finally:
        os.close(fd)
    with pytest.raises(FileNotFoundError):
        netns.netns_fd("/var/run/netns/pycni-t-missing")


def test_handle_stays_bound_to_its_namespace(ns: NS, ns2: NS) -> None:
    home = _my_netns()
    with netns.open_handle(ns.path) as a, netns.open_handle(ns2.path) as b:
        assert _my_netns() == home
        link.create_ifb(a, "only-in-a")
        assert link.get_link(b, "only-in-a") is None
        assert ns.link("only-in-a")["ifname"] == "only-in-a"
        assert ns2.exec("ip", "link", "show", "only-in-a", check=False).returncode != 0


def test_open_handle_none_is_current_namespace() -> None:
    with netns.open_handle(None) as h:
        names = {x.name for x in link.list_links(h)}
    assert "lo" in names
    assert names == set(os.listdir("/sys/class/net"))
