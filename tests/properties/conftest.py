"""Property-based tests (hypothesis) over the pure code; the repository root goes on sys.path.

Example counts are fixed per test (`settings(max_examples=...)`) so the suites take about the same
time on every run; docs/TESTING.md lists them.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
