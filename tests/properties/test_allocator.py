"""The allocator's invariants over random ranges: every address once, never the gateway, never
outside the range, as many as the capacity says."""

from __future__ import annotations

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ipam import allocator, ranges


@st.composite
def range_sets(draw):
    version = draw(st.sampled_from((4, 6)))
    bits = 32 if version == 4 else 128
    prefix = draw(st.integers(bits - 8, bits - 2))  # up to 256 addresses: walked whole
    base = draw(st.integers(0, (1 << bits) - 1)) >> (bits - prefix) << (bits - prefix)
    size = 1 << (bits - prefix)
    pick = st.integers(0, size - 1).map(lambda i: ranges.Addr(version, base + i))
    start = draw(st.none() | pick)
    end = draw(st.none() | pick)
    gateway = draw(st.none() | pick)
    raw = ranges.RawRange((ranges.Addr(version, base), prefix, version == 6), start, end, gateway)
    try:
        return ranges.canonical_set([raw])
    except ranges.Invalid:
        assume(False)


@settings(max_examples=300, deadline=None)
@given(rs=range_sets(), data=st.data())
def test_candidates_are_unique_in_range_and_never_the_gateway(rs, data):
    r = rs[0]
    top = (1 << r.subnet.max_prefixlen) - 1  # a range at the top of the space has no r.last + 2
    last = data.draw(st.none() | st.integers(r.first - 2, r.last + 2).filter(lambda v: 0 <= v <= top)
                     .map(r.address))
    walk = [ip for ip, _ in allocator.candidates(rs, last)]
    assert len(walk) == len(set(walk)), "an address offered twice"
    assert all(r.contains(ip) and ip in r.subnet for ip in walk)
    assert r.gateway not in walk
    assert len(walk) == allocator.capacity(rs)
    if last is not None and r.contains(last) and last != r.gateway:
        assert walk[-1] == last  # round robin: the last one handed out comes last


@settings(max_examples=200, deadline=None)
@given(rs=range_sets(), data=st.data())
def test_free_count_counts_what_the_walk_leaves(rs, data):
    walk = [ip for ip, _ in allocator.candidates(rs, None)]
    taken = data.draw(st.lists(st.sampled_from(walk), unique=True, max_size=20)) if walk else []
    assert allocator.free_count(rs, taken) == len(walk) - len(taken)
