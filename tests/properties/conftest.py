"""Property-based tests (hypothesis) over the pure code.

Example counts are fixed per test (`settings(max_examples=...)`) so the suites take about the same
time on every run; docs/TESTING.md lists them.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
