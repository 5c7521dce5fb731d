"""host-local tests: a fixed umask.

(This directory has no __init__.py on purpose: as a package it would be named `ipam` and hide
the real one.)
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def umask_022():
    """A fixed umask: files are created with their mode less the umask (0600 reservations stay 0600)."""
    old = os.umask(0o022)
    yield
    os.umask(old)
