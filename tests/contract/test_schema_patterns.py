"""Schema patterns matched without `re` must agree with ECMA-262 semantics as `re` implements them."""

from __future__ import annotations

import pytest

from cni.contract import schema

CASES = ["cbr0", "cbr0\n", "a/b", "a:b", "a b", "", "é", "\tx", "x\u2028", "cni-0.1_x", "::", "/"]


@pytest.mark.parametrize("pattern", ["^[^/:\\s]+$", "^[^,]+$", "^[^xyz\\s]+$"])
def test_fast_matcher_agrees_with_re(pattern):
    fast = schema._without_re(pattern)
    assert fast is not None
    slow = schema._with_re(pattern)
    assert [fast(v) for v in CASES] == [slow(v) for v in CASES]


@pytest.mark.parametrize("pattern", ["^a+$", "^[^a-z]+$", "^[^\\d]+$", "[^x]+", "^[^]x]+$"])
def test_other_patterns_use_re(pattern):
    assert schema._without_re(pattern) is None
    matcher, slow = schema._pattern(pattern), schema._with_re(pattern)
    assert [matcher(v) for v in CASES] == [slow(v) for v in CASES]
