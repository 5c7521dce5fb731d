"""host-local tests import the sources directly: put the repository root first on sys.path.

(This directory has no __init__.py on purpose: as a package it would be named `ipam` and hide
the real one.)
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
