"""The bandwidth rules without a kernel: which limits apply, validation, tbf figures, IFB names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cni.contract import schema
from cni.contract.errors import CNIError
from cni.plugins.bandwidth import shaping
from cni.plugins.bandwidth.shaping import Limits, bucket, select_limits, validate

from .reference import reference_bucket

TICK = 15.625
U32 = 2**32 - 1


def clamped(b: shaping.Bucket, burst_bits: int) -> bool:
    """The bucket's burst is not the one asked for (`default_burst` replaced it)."""
    return b.burst != burst_bits // 8


def latency_usec(b: shaping.Bucket) -> float:
    """How long a full queue takes to drain beyond the bucket (what `tc` prints as `lat`)."""
    return shaping.TIME_UNITS_PER_SEC * b.limit / b.rate - int(b.buffer / TICK)
CONTAINERD = 2**32 - 1  # bits
CRIO = (2**32 - 1) * 8 - 1  # bits
SCHEMA = Path(__file__).resolve().parents[2] / "conf" / "schemas" / "bandwidth.json"


# --- which limits apply ---------------------------------------------------------------------------

def test_top_level_keys():
    got = select_limits({"ingressRate": 8000, "ingressBurst": 16000, "egressRate": 1, "egressBurst": 2})
    assert got == Limits(ingress_rate=8000, ingress_burst=16000, egress_rate=1, egress_burst=2, source="")


def test_runtime_keys_when_no_top_level_key():
    config = {"runtimeConfig": {"bandwidth": {"egressRate": 5, "egressBurst": 6}}}
    assert select_limits(config) == Limits(egress_rate=5, egress_burst=6, source="runtimeConfig.bandwidth")


def test_one_static_key_wins_wholesale():
    config = {"egressRate": 0, "runtimeConfig": {"bandwidth": {"ingressRate": 5, "ingressBurst": 6}}}
    got = select_limits(config)
    assert got.source == "" and got.is_zero()


def test_nothing_configured():
    assert select_limits({"name": "n"}) is None
    assert select_limits({"runtimeConfig": {}}) is None
    assert select_limits({"runtimeConfig": {"portMappings": []}}) is None


def test_schema_normalises_key_case_as_go_does():
    raw = {"name": "n", "runtimeConfig": {"bandWidth": {"IngressRate": 8, "ingressburst": 8}}}
    config = schema.validate(raw, "bandwidth")
    assert select_limits(config) == Limits(ingress_rate=8, ingress_burst=8, source="runtimeConfig.bandwidth")


# --- validation ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("limits, key, words", [
    (Limits(ingress_rate=1000), "ingressBurst", "burst must also be set"),
    (Limits(egress_burst=1000), "egressRate", "rate must also be set"),
    (Limits(egress_rate=8, source="runtimeConfig.bandwidth"), "runtimeConfig.bandwidth.egressBurst", "burst"),
    (Limits(ingress_rate=8000, ingress_burst=U32 * 8), "ingressBurst", "4GB"),
    (Limits(egress_rate=8000, egress_burst=2**64 - 1), "egressBurst", "4GB"),
    (Limits(ingress_rate=7, ingress_burst=8000), "ingressRate", "1 byte per second"),
    (Limits(ingress_rate=8000, ingress_burst=7), "ingressBurst", "1 byte"),
    (Limits(egress_rate=2**63, egress_burst=8000), "egressRate", "too high"),
])
def test_invalid(limits, key, words):
    with pytest.raises(CNIError) as info:
        validate(limits)
    assert info.value.code == 7
    assert key in info.value.msg and words in info.value.msg


@pytest.mark.parametrize("limits", [
    Limits(),
    Limits(ingress_rate=8, ingress_burst=8),
    Limits(ingress_rate=1_000_000, ingress_burst=CONTAINERD, egress_rate=1_000_000, egress_burst=CRIO),
])
def test_valid(limits):
    validate(limits)


def test_largest_burst_the_reference_accepts():
    validate(Limits(ingress_rate=8, ingress_burst=U32 * 8 - 1))
    with pytest.raises(CNIError):
        validate(Limits(ingress_rate=8, ingress_burst=U32 * 8))


# --- tbf figures --------------------------------------------------------------------------------------

# (rate bit/s, burst bits) -> (rate B/s, burst B, buffer ticks, limit B), worked out by hand with the
# reference's steps: bytes = bits // 8; buffer = int(int(burst * 1e6 / rate) * 15.625);
# limit = int(rate * 25000 / 1e6) + burst.
FIGURES = [
    ((8, 8), (1, 1, 15_625_000, 1)),  # the reference suite's smallest case
    ((1_000_000, 128_000), (125_000, 16_000, 2_000_000, 19_125)),
    ((3_000_000, 128_000), (375_000, 16_000, 666_656, 25_375)),  # tc says 666666: it keeps the µs fraction
    ((8000, 16000), (1000, 2000, 31_250_000, 2025)),  # the reference's integration test
    ((100_000_000, 100_000_000), (12_500_000, 12_500_000, 15_625_000, 12_812_500)),
]


@pytest.mark.parametrize("config, want", FIGURES)
def test_figures(config, want):
    b = bucket(*config, TICK)
    assert (b.rate, b.burst, b.buffer, b.limit) == want
    assert not clamped(b, config[1])
    assert reference_bucket(*config, TICK) == (want[0], want[2], want[3])
    # 25 ms of queue beyond the bucket (none at 1 byte/s: 25 ms of it is under a byte)
    assert abs(latency_usec(b) - (25_000 if b.rate > 40 else 0)) < 2


# containerd's burst -> (burst B, buffer ticks, limit B): 100 ms of the rate, at least 16 KiB
CONTAINERD_FIGURES = [
    (1_000_000, (16_384, 2_048_000, 19_509)),  # 12.5 kB would be under the 16 KiB floor
    (10_000_000, (125_000, 1_562_500, 156_250)),
    (100_000_000, (1_250_000, 1_562_500, 1_562_500)),
    (1_000_000_000, (12_500_000, 1_562_500, 15_625_000)),
]


@pytest.mark.parametrize("rate, want", CONTAINERD_FIGURES)
def test_containerd_burst_becomes_100_ms(rate, want):
    b = bucket(rate, CONTAINERD, TICK)
    assert clamped(b, CONTAINERD) and CONTAINERD // 8 == 536_870_911
    assert (b.rate, b.burst, b.buffer, b.limit) == (rate // 8, *want)
    assert abs(latency_usec(b) - 25_000) < 2


def test_large_explicit_burst_is_kept():
    b = bucket(10_000_000, 100_000_000, TICK)  # ten seconds' worth, written by an operator
    assert not clamped(b, 100_000_000) and b.burst == 12_500_000
    assert (b.rate, b.buffer, b.limit) == reference_bucket(10_000_000, 100_000_000, TICK)


def test_burst_the_tick_field_cannot_time_gets_the_default():
    b = bucket(8000, 4_000_000_000, TICK)  # 500 MB at 1 kB/s: 500000 s, the reference wraps it
    assert clamped(b, 4_000_000_000) and b.burst == 16_384 and b.buffer == 16_384_000 * 15.625
    assert reference_bucket(8000, 4_000_000_000, TICK)[1] != b.buffer


def test_reference_wraps_containerd_burst_at_1_mbit():
    """The wrapped bucket Debian's 1.1.1 installs (measured: 21474835 bytes, 4120 s latency)."""
    rate, buffer, limit = reference_bucket(1_000_000, CONTAINERD, TICK)
    assert (rate, buffer, limit) == (125_000, 2_684_354_435, 536_874_036)
    burst_shown_by_tc = int(rate * int(buffer / TICK) / 1e6)
    assert burst_shown_by_tc == 21_474_835
    assert 4100e6 < 1e6 * limit / rate - buffer / TICK < 4130e6


def test_crio_burst_at_10_gbit():
    b = bucket(10_000_000_000, CRIO, TICK)
    assert clamped(b, CRIO) and b.burst == 125_000_000 and b.buffer == 1_562_500
    assert b.limit == 125_000_000 + 31_250_000


def test_tiny_rate_huge_burst_fits_the_tick_field():
    b = bucket(8, CONTAINERD, TICK)  # 1 byte/s: even the 16 KiB floor would need 16384 s
    assert clamped(b, CONTAINERD) and b.buffer <= U32 and b.burst == 274
    assert shaping.ticks(1, 275, TICK) > U32


def test_floor_keeps_small_rates_usable():
    b = bucket(100_000, CONTAINERD, TICK)  # 12.5 kB/s: 100 ms would be 1250 bytes, under a frame
    assert b.burst == 16_384 and clamped(b, CONTAINERD)


def test_burst_over_40_gbit_keeps_limit_in_32_bits():
    b = bucket(40_000_000_000, CRIO, TICK)
    assert b.limit <= U32 and b.buffer <= U32 and clamped(b, CRIO)


@pytest.mark.parametrize("rate", [8, 800, 64_000, 1_000_000, 15_000_000, 16_000_000, 10**9, 10**10, 10**11])
@pytest.mark.parametrize("burst", [8, 12_000, 1_000_000, 10**9, CONTAINERD, CRIO])
def test_every_bucket_fits_the_kernel_and_matches_the_reference_when_unclamped(rate, burst):
    b = bucket(rate, burst, TICK)
    assert 0 < b.burst <= burst // 8
    assert 0 <= b.buffer <= U32 and 0 < b.limit <= U32
    if clamped(b, burst):
        assert burst >= shaping.RUNTIME_BURST_BITS or shaping.ticks(b.rate, burst // 8, TICK) > U32
        assert b.burst <= max(b.rate // 10, shaping.MIN_DEFAULT_BUCKET)
    else:
        assert (b.rate, b.buffer, b.limit) == reference_bucket(rate, burst, TICK)


# --- schema -----------------------------------------------------------------------------------------

def test_schema_agrees_with_jsonschema():
    jsonschema = pytest.importorskip("jsonschema")
    doc = json.loads(SCHEMA.read_text())
    jsonschema.Draft202012Validator.check_schema(doc)
    good = {"name": "n", "ingressRate": 1, "ingressBurst": 2,
            "runtimeConfig": {"bandwidth": {"egressRate": 3}}}
    jsonschema.validate(good, doc)
    schema.validate(good, "bandwidth")
    for bad in ({"name": "n", "ingressRate": -1}, {"name": "n", "egressBurst": 1.5},
                {"name": "n", "runtimeConfig": {"bandwidth": {"egressRate": "1M"}}},
                {"name": "n", "ingressRate": 2**64}, {"ingressRate": 1}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, doc)
        with pytest.raises(CNIError) as info:
            schema.validate(bad, "bandwidth")
        assert info.value.code == 7


def test_every_key_is_described():
    def walk(node, path):
        for key, sub in node.get("properties", {}).items():
            assert sub.get("description"), f"{path}{key} has no description"
            assert sub.get("type"), f"{path}{key} has no type"
            walk(sub, f"{path}{key}.")

    walk(json.loads(SCHEMA.read_text()), "")
