"""libcni (through our cnitool) accepts the VERSION answer of each of our plugin types.

Uses ``bin_dir``: ``$PYCNI_BIN``, or the bundle ``./build.sh`` builds into dist/bin.
"""

from __future__ import annotations

import pytest

TYPES = ["bridge", "host-local", "bandwidth", "loopback"]


@pytest.mark.parametrize("plugin_type", TYPES)
def test_cnitool_version_ours(plugin_type, cnitool, bin_dir):
    out = cnitool.version(plugin_type, cni_path=bin_dir).check()
    assert {"0.3.1", "0.4.0", "1.0.0"} <= set(out.json["supportedVersions"])


@pytest.mark.parametrize("plugin_type", TYPES)
def test_our_version_matches_reference_versions(plugin_type, cnitool, bin_dir, ref_bin_dir):
    """Everything the reference plugin of the same type supports, ours supports too."""
    ours = set(cnitool.version(plugin_type, cni_path=bin_dir).check().json["supportedVersions"])
    ref = set(cnitool.version(plugin_type, cni_path=ref_bin_dir).check().json["supportedVersions"])
    assert ref <= ours
