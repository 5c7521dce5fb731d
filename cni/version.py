"""pycni's release version: the one place it is written (pyproject.toml and build.sh read it here)."""

VERSION = "0.2.0"
