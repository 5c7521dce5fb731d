"""host-local tests import the sources directly: put the repository root first on sys.path.

(This directory has no __init__.py on purpose: as a package it would be named `ipam` and hide
the real one.)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


@pytest.fixture(autouse=True)
def umask_022():
    """A fixed umask: files are created with their mode less the umask (0600 reservations stay 0600)."""
    old = os.umask(0o022)
    yield
    os.umask(old)
