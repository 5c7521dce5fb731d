"""Which tests are heavy: they need root, the kernel's namespaces or the built bundle.

Everything else is the quick tier (``pytest -m "not heavy"``), the edit loop's suite: pure and
property tests, run without root in under a minute of CPU. In that run each property test draws
a twentieth of its examples (at least ``QUICK_MIN_EXAMPLES``) and keeps no example database; a
run of everything draws them all. A test is heavy when it is marked
``root``, lives in a folder whose every test drives real nodes, or uses (directly or through
another fixture) one of the fixtures below. ``tests/unit/test_quick_tier.py`` runs the quick tier
as an unprivileged user with a time bound, so a test that needs more and is not caught here
fails there instead of slipping in.
"""

from __future__ import annotations

from collections.abc import Iterable

MARKER = "heavy"  # registered in pyproject.toml

# Folders whose tests all run emulated nodes, guest kernels, fresh roots or the benchmark.
HEAVY_FOLDERS = frozenset({"e2e", "vm", "freshroot", "bench"})

# Fixtures that build or run executables, or make kernel objects (namespaces, links, rules).
HEAVY_FIXTURES = frozenset({
    "bin_dir", "ref_bin_dir", "debian_ref_bin_dir", "cnitool",
    "netns", "host_links", "bridge_name", "ns", "ns2", "vlan_filtering_supported",
})


QUICK_EXPR = "not heavy"
QUICK_DIVISOR = 20
QUICK_MIN_EXAMPLES = 10


def is_quick_run(markexpr: str | None) -> bool:
    """The session selects the quick tier (``-m "not heavy"``, possibly narrowed further)."""
    return QUICK_EXPR in (markexpr or "")


def quick_examples(full: int) -> int:
    """How many examples a property test draws in the quick tier."""
    return min(full, max(QUICK_MIN_EXAMPLES, full // QUICK_DIVISOR))


def keep_no_examples() -> None:
    """Property tests of the quick tier keep no example database (a user's run may not write the tree)."""
    from hypothesis import settings

    settings.register_profile("pycni-quick", database=None)
    settings.load_profile("pycni-quick")


def fewer_examples(test: object) -> None:
    """Give a hypothesis test (the function under ``@given``) its quick-tier example count, once."""
    current = getattr(test, "_hypothesis_internal_use_settings", None)
    if current is None or getattr(test, "_pycni_quick", False):
        return
    from hypothesis import settings  # only a session with property tests pays for it

    quick = settings(current, max_examples=quick_examples(current.max_examples), database=None)
    test._hypothesis_internal_use_settings = quick  # type: ignore[attr-defined]
    test._pycni_quick = True  # type: ignore[attr-defined]


def is_heavy(folders: Iterable[str], fixtures: Iterable[str], markers: Iterable[str]) -> bool:
    """True when a test needs more than a Python interpreter and a temporary directory."""
    return ("root" in set(markers) or not HEAVY_FOLDERS.isdisjoint(folders)
            or not HEAVY_FIXTURES.isdisjoint(fixtures))
