"""host-local's on-disk layout: what the writer puts in a reservation file is what every reader
(the plugin's DEL/GC, `pycni status`/`gc`, the soak's checks) reads back."""

from __future__ import annotations

import pytest

from cni.layout import hostlocal as layout


@pytest.mark.parametrize(("cid", "ifname"), [("a" * 64, "eth0"), ("abc", "net1"), ("x", "lo"),
                                             ("c1", "e\udcff0")])
def test_content_round_trips(cid, ifname):
    data = layout.content_for(cid, ifname)
    assert data == cid.encode() + b"\r\n" + ifname.encode("utf-8", "surrogateescape")
    assert layout.owner_of(data) == (cid, ifname)


def test_older_format_and_padding():
    assert layout.owner_of(b"abc") == ("abc", None)
    assert layout.owner_of(b" abc \r\n") == ("abc", None), "the separator stripped off leaves the ID"
    assert layout.owner_of(layout.legacy_content_for(" abc\n")) == ("abc", None)
    assert layout.owner_of(b"abc\r\neth0\n") == ("abc", "eth0")
    assert layout.owner_of(b"\xffa\r\neth0", errors="replace") == ("\ufffda", "eth0")


def test_names_of_the_bookkeeping_files():
    assert layout.last_reserved_name(3) == "last_reserved_ip.3"
    assert layout.is_bookkeeping_name("lock") and layout.is_bookkeeping_name("last_reserved_ip.0")
    for name in ("last_reserved_ip.", "last_reserved_ip.x", "last_reserved_ip.\u0663", "10.0.0.1", "locks"):
        assert not layout.is_bookkeeping_name(name), name
    tmp = layout.temp_name(42, "ab12")
    assert layout.is_temp_name(tmp)
    assert not layout.is_address_name(tmp) and not layout.is_bookkeeping_name(tmp)
    for name in ("10.0.0.1", "2001:db8::5"):
        assert layout.is_address_name(name) and not layout.is_temp_name(name)
