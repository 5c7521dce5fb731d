"""The bandwidth plugin's rules as pure functions: which limits apply, and the tbf figures for them.

No kernel here: the scheduler's ticks per microsecond (15.625 on current kernels, from
/proc/net/psched) is an argument, so every figure can be unit-tested without root.

The arithmetic is the reference plugin's (rate and burst in bytes, bucket time in whole
microseconds, then ticks; limit = 25 ms of traffic at the rate + the burst), with one
deliberate difference. Runtimes send a huge burst when a pod gives only a rate (containerd
2^32-1 bits, CRI-O 2^35-9 bits), meaning "no burst given"; the reference then overflows the
kernel's 32-bit tick field and installs an arbitrary bucket (below ~15.6 Mbit/s), or a 512 MiB
bucket that lets a pod run unshaped for many seconds and queue as long. Such bursts, and any
other the tick field cannot time, get `default_burst` instead: 100 ms of the rate.
"""

from __future__ import annotations

from cni.contract.errors import INVALID_CONFIG, CNIError
from cni.record import Record

U32_MAX = 0xFFFFFFFF
TIME_UNITS_PER_SEC = 1_000_000  # tc's time unit is the microsecond
LATENCY_USEC = 25_000  # the reference's fixed queueing latency: 25 ms

# A burst of this many bits or more is a runtime's "no burst given" (containerd's value; CRI-O's is larger).
RUNTIME_BURST_BITS = 2**32 - 1
# The bucket installed instead: this fraction of a second at the rate ...
DEFAULT_BUCKET_DIVISOR = 10  # 100 ms
# ... but at least this many bytes, so a full-size frame (jumbo frames included) always fits.
MIN_DEFAULT_BUCKET = 16_384

KEYS = ("ingressRate", "ingressBurst", "egressRate", "egressBurst")
RUNTIME_PATH = "runtimeConfig.bandwidth"


class Limits(Record):
    """The four configured figures, in bits per second and bits; `source` names where they came from
    ("" for the top level, RUNTIME_PATH for the runtime's capability)."""

    __slots__ = ("ingress_rate", "ingress_burst", "egress_rate", "egress_burst", "source")
    _defaults = {"ingress_rate": 0, "ingress_burst": 0, "egress_rate": 0, "egress_burst": 0, "source": ""}
    ingress_rate: int
    ingress_burst: int
    egress_rate: int
    egress_burst: int
    source: str

    def is_zero(self) -> bool:
        return not (self.ingress_rate or self.ingress_burst or self.egress_rate or self.egress_burst)

    @property
    def ingress(self) -> bool:
        return self.ingress_rate > 0 and self.ingress_burst > 0

    @property
    def egress(self) -> bool:
        return self.egress_rate > 0 and self.egress_burst > 0


class Bucket(Record):
    """One tbf: rate in bytes/s, burst in bytes, buffer in ticks, limit in bytes."""

    __slots__ = ("rate", "burst", "buffer", "limit")
    rate: int
    burst: int
    buffer: int
    limit: int


# --- configuration -------------------------------------------------------------------------


def _key(source: str, name: str) -> str:
    return f"{source}.{name}" if source else name


def select_limits(config: dict) -> Limits | None:
    """The limits that apply: the top-level keys if any of them is present, else the runtime's.

    As in the reference, one top-level key is enough for the static config to win wholesale;
    `runtimeConfig.bandwidth` is then ignored. None when neither is present.
    """
    if any(k in config for k in KEYS):
        return _limits(config, "")
    runtime = config.get("runtimeConfig")
    if isinstance(runtime, dict) and isinstance(runtime.get("bandwidth"), dict):
        return _limits(runtime["bandwidth"], RUNTIME_PATH)
    return None


def _limits(raw: dict, source: str) -> Limits:
    def get(name: str) -> int:
        value = raw.get(name)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    return Limits(get("ingressRate"), get("ingressBurst"), get("egressRate"), get("egressBurst"), source)


def validate(limits: Limits) -> None:
    """The reference's rules, with errors naming the key: rate and burst both set or both 0, and
    burst/8 below 2^32-1. Also refused, where the reference installs a broken qdisc: a rate or a
    burst under 8 bits (0 bytes), and a rate so high that 25 ms of it overflows the 32-bit limit."""
    for direction, rate, burst in (("ingress", limits.ingress_rate, limits.ingress_burst),
                                   ("egress", limits.egress_rate, limits.egress_burst)):
        rate_key = _key(limits.source, f"{direction}Rate")
        burst_key = _key(limits.source, f"{direction}Burst")
        if rate and not burst:
            raise CNIError(INVALID_CONFIG, f"{burst_key} is missing: if rate is set, burst must also be set",
                           f"{rate_key}={rate}, {burst_key}=0")
        if burst and not rate:
            raise CNIError(INVALID_CONFIG, f"{rate_key} is missing: if burst is set, rate must also be set",
                           f"{rate_key}=0, {burst_key}={burst}")
        if not rate:
            continue
        if burst // 8 >= U32_MAX:
            raise CNIError(INVALID_CONFIG, f"invalid {burst_key} {burst}: burst cannot be more than 4GB",
                           f"{burst_key} is in bits and must be below {U32_MAX * 8}")
        if rate < 8:
            raise CNIError(INVALID_CONFIG, f"invalid {rate_key} {rate}: below 1 byte per second",
                           f"{rate_key} is in bits per second and must be at least 8")
        if burst < 8:
            raise CNIError(INVALID_CONFIG, f"invalid {burst_key} {burst}: below 1 byte",
                           f"{burst_key} is in bits and must be at least 8")
        if _latency_bytes(rate // 8) >= U32_MAX:
            raise CNIError(INVALID_CONFIG, f"invalid {rate_key} {rate}: too high for a token bucket",
                           f"25 ms at {rate_key} must be below {U32_MAX} bytes")


# --- arithmetic -----------------------------------------------------------------------------


def _latency_bytes(rate: int) -> int:
    """Bytes sent in LATENCY_USEC at `rate` bytes/s, as the reference computes it (float, truncated)."""
    return int(float(rate) * LATENCY_USEC / TIME_UNITS_PER_SEC)


def ticks(rate: int, burst: int, tick_in_usec: float) -> int:
    """The tbf buffer for `burst` bytes at `rate` bytes/s: whole microseconds, then ticks.

    Not wrapped to 32 bits: callers compare with U32_MAX (the reference wraps silently).
    """
    usec = int(float(burst) * TIME_UNITS_PER_SEC / float(rate))
    return int(float(usec) * tick_in_usec)


def max_timed_burst(rate: int, tick_in_usec: float) -> int:
    """The largest burst (bytes) whose buffer still fits the kernel's 32-bit tick field."""
    guess = int(U32_MAX / tick_in_usec * rate / TIME_UNITS_PER_SEC)
    while guess > 0 and ticks(rate, guess, tick_in_usec) > U32_MAX:
        guess -= max(1, rate // TIME_UNITS_PER_SEC)
    return max(guess, 0)


def default_burst(rate: int, tick_in_usec: float) -> int:
    """The bucket (bytes) for a runtime's "no burst given": 100 ms at `rate` bytes/s, at least 16 KiB.

    Never more than the 32-bit tick field can time, nor than leaves the limit (25 ms of traffic +
    the burst) in 32 bits.
    """
    burst = max(rate // DEFAULT_BUCKET_DIVISOR, MIN_DEFAULT_BUCKET)
    return min(burst, max_timed_burst(rate, tick_in_usec), U32_MAX - _latency_bytes(rate))


def bucket(rate_bits: int, burst_bits: int, tick_in_usec: float) -> Bucket:
    """The tbf for a validated rate (bits/s) and burst (bits).

    The burst is used as given, as the reference uses it, unless it is a runtime's "no burst
    given" (RUNTIME_BURST_BITS or more) or too long for the tick field; then `default_burst`.
    """
    rate = rate_bits // 8
    requested = burst_bits // 8
    burst = requested
    unusable = ticks(rate, requested, tick_in_usec) > U32_MAX or _latency_bytes(rate) + requested > U32_MAX
    if burst_bits >= RUNTIME_BURST_BITS or unusable:
        burst = min(requested, default_burst(rate, tick_in_usec))
    return Bucket(
        rate=rate,
        burst=burst,
        buffer=ticks(rate, burst, tick_in_usec),
        limit=_latency_bytes(rate) + burst,
    )
