"""The reference bandwidth plugin's tbf arithmetic, to compare pycni's figures with."""

from __future__ import annotations

U32_MAX = 0xFFFFFFFF
TIME_UNITS_PER_SEC = 1_000_000
LATENCY_USEC = 25_000


def reference_bucket(rate_bits: int, burst_bits: int, tick_in_usec: float) -> tuple[int, int, int]:
    """(rate, buffer, limit) exactly as the reference plugin sends them, 32-bit wrap-around included.

    The buffer's float-to-uint32 conversion is undefined in Go; on amd64 it keeps the low 32 bits of
    the 64-bit integer, which is what this returns.
    """
    rate = rate_bits // 8
    burst = (burst_bits // 8) & U32_MAX
    usec = int(float(burst) * TIME_UNITS_PER_SEC / float(rate)) & U32_MAX
    buffer = int(float(usec) * tick_in_usec) & U32_MAX
    latency_bytes = int(float(rate) * LATENCY_USEC / TIME_UNITS_PER_SEC)
    limit = ((latency_bytes & U32_MAX) + burst) & U32_MAX
    return rate, buffer, limit
