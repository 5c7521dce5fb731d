"""host-local allocation order: round robin over a range set, gateway skipped, wrap-around, requested IPs."""

from __future__ import annotations

from itertools import islice

import pytest

from cni.contract.errors import CNIError
from ipam import allocator, config, ranges

ip = ranges.parse_ip


def rangeset(*ranges: dict, version: str = "1.0.0") -> config.RangeSet:
    cfg = config.parse({"cniVersion": version, "name": "n", "ipam": {"ranges": [list(ranges)]}}, {}, version)
    return cfg.ranges[0]


def order(rs: config.RangeSet, last: str | None = None, limit: int | None = None) -> list[str]:
    walk = allocator.candidates(rs, ip(last) if last else None)
    return [str(a) for a, _ in islice(walk, limit)]


def test_fresh_v4_subnet_starts_after_the_gateway_and_never_gives_broadcast():
    got = order(rangeset({"subnet": "10.1.2.0/24"}))
    assert got[:3] == ["10.1.2.2", "10.1.2.3", "10.1.2.4"]
    assert got[-1] == "10.1.2.254"
    assert len(got) == 253 and len(set(got)) == 253
    assert "10.1.2.1" not in got and "10.1.2.255" not in got and "10.1.2.0" not in got


def test_round_robin_from_last_reserved_and_last_comes_last():
    got = order(rangeset({"subnet": "10.1.2.0/29"}), last="10.1.2.4")
    assert got == ["10.1.2.5", "10.1.2.6", "10.1.2.2", "10.1.2.3", "10.1.2.4"]


def test_wrap_from_the_end_skips_the_gateway():
    got = order(rangeset({"subnet": "10.1.2.0/29"}), last="10.1.2.6")
    assert got == ["10.1.2.2", "10.1.2.3", "10.1.2.4", "10.1.2.5", "10.1.2.6"]


def test_last_reserved_outside_the_set_starts_from_the_beginning():
    rs = rangeset({"subnet": "10.1.2.0/29", "rangeStart": "10.1.2.3"})
    assert order(rs, last="10.9.9.9") == ["10.1.2.3", "10.1.2.4", "10.1.2.5", "10.1.2.6"]
    assert order(rs, last="10.1.2.2") == ["10.1.2.3", "10.1.2.4", "10.1.2.5", "10.1.2.6"]
    assert order(rs, last="fd00::1") == ["10.1.2.3", "10.1.2.4", "10.1.2.5", "10.1.2.6"]


def test_gateway_in_the_middle_and_custom_gateway():
    assert order(rangeset({"subnet": "10.1.2.0/29", "gateway": "10.1.2.3"})) == [
        "10.1.2.1", "10.1.2.2", "10.1.2.4", "10.1.2.5", "10.1.2.6"]
    # The walk may start on the gateway (last reserved just before it): it is skipped, and the walk ends.
    assert order(rangeset({"subnet": "10.1.2.0/29", "gateway": "10.1.2.3"}), last="10.1.2.2") == [
        "10.1.2.4", "10.1.2.5", "10.1.2.6", "10.1.2.1", "10.1.2.2"]


def test_multi_range_set_walks_across_ranges_and_wraps():
    rs = rangeset({"subnet": "10.1.2.0/24", "rangeStart": "10.1.2.10", "rangeEnd": "10.1.2.11"},
                  {"subnet": "10.1.3.0/24", "rangeStart": "10.1.3.1", "rangeEnd": "10.1.3.3"})
    assert order(rs) == ["10.1.2.10", "10.1.2.11", "10.1.3.2", "10.1.3.3"]
    # Last reserved at the end of the first range: continue with the second range's start.
    assert order(rs, last="10.1.2.11") == ["10.1.3.2", "10.1.3.3", "10.1.2.10", "10.1.2.11"]
    assert order(rs, last="10.1.3.3") == ["10.1.2.10", "10.1.2.11", "10.1.3.2", "10.1.3.3"]
    assert [str(r.subnet) for _, r in allocator.candidates(rs, None)] == [
        "10.1.2.0/24", "10.1.2.0/24", "10.1.3.0/24", "10.1.3.0/24"]


def test_v6_walk_includes_the_last_address():
    got = order(rangeset({"subnet": "2001:db8::/126"}))
    assert got == ["2001:db8::2", "2001:db8::3"]
    got = order(rangeset({"subnet": "2001:db8::/64"}), last="2001:db8::ffff:ffff:ffff:fffe", limit=3)
    assert got == ["2001:db8::ffff:ffff:ffff:ffff", "2001:db8::2", "2001:db8::3"]


def test_huge_v6_range_is_walked_lazily():
    rs = rangeset({"subnet": "2001:db8::/32"})
    assert order(rs, last="2001:db8::ff", limit=2) == ["2001:db8::100", "2001:db8::101"]


def test_single_address_range():
    rs = rangeset({"subnet": "10.1.2.0/24", "rangeStart": "10.1.2.7", "rangeEnd": "10.1.2.7"})
    assert order(rs) == ["10.1.2.7"]
    assert order(rs, last="10.1.2.7") == ["10.1.2.7"]


# ---- requested addresses ----------------------------------------------------------------------
def test_assign_requested_gives_each_set_the_first_address_inside_it():
    v4, v6 = rangeset({"subnet": "10.1.2.0/24"}), rangeset({"subnet": "2001:db8::/64"})
    per_set, left = allocator.assign_requested([v4, v6], [ip("2001:db8::9"), ip("10.1.2.7"), ip("10.1.2.8"),
                                                          ip("10.1.9.9")])
    assert per_set == [ip("10.1.2.7"), ip("2001:db8::9")]
    assert left == [ip("10.1.2.8"), ip("10.1.9.9")]
    assert allocator.assign_requested([v4, v6], []) == ([None, None], [])


def test_requested_outside_start_end_is_not_in_the_set():
    rs = rangeset({"subnet": "10.1.2.0/24", "rangeStart": "10.1.2.100"})
    per_set, left = allocator.assign_requested([rs], [ip("10.1.2.7")])
    assert per_set == [None] and left == [ip("10.1.2.7")]


def test_requested_gateway_is_refused():
    rs = rangeset({"subnet": "10.1.2.0/24"})
    with pytest.raises(CNIError, match=r"^requested ip 10\.1\.2\.1 is subnet's gateway$"):
        allocator.requested_range(rs, ip("10.1.2.1"))
    assert allocator.requested_range(rs, ip("10.1.2.9")) is rs[0]


def test_duplicate_guard_is_per_range_set():
    v4 = rangeset({"subnet": "10.1.2.0/24"})
    allocator.check_duplicate(v4, [ip("2001:db8::2"), ip("10.9.0.2")], "c1")
    with pytest.raises(CNIError) as info:
        allocator.check_duplicate(v4, [ip("2001:db8::2"), ip("10.1.2.5")], "c1")
    assert info.value.msg == "10.1.2.5 has been allocated to c1, duplicate allocation is not allowed"


def test_errors_name_the_range_set():
    rs = rangeset({"subnet": "10.1.2.0/24", "rangeEnd": "10.1.2.9"}, {"subnet": "10.1.3.0/30"})
    assert allocator.exhausted_error(rs).msg == (
        "no IP addresses available in range set: 10.1.2.1-10.1.2.9,10.1.3.1-10.1.3.2")
    assert allocator.unavailable_error(rs, ip("10.1.2.5")).msg == (
        "requested IP address 10.1.2.5 is not available in range set 10.1.2.1-10.1.2.9,10.1.3.1-10.1.3.2")


# ---- capacity for STATUS ------------------------------------------------------------------------
def test_capacity_and_free_count():
    rs = rangeset({"subnet": "10.1.2.0/29"}, {"subnet": "10.1.3.0/24", "rangeStart": "10.1.3.10",
                                                "rangeEnd": "10.1.3.11"})
    assert allocator.capacity(rs) == 5 + 2
    assert allocator.capacity(rs) == len(order(rs))
    held = [ip("10.1.2.2"), ip("10.1.2.1"), ip("10.1.3.10"), ip("10.1.9.9"), ip("fd00::1")]
    assert allocator.free_count(rs, held) == 5
    assert allocator.capacity(rangeset({"subnet": "2001:db8::/64"})) == 2 ** 64 - 2
