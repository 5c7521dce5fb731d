"""Programs we start see the runtime's environment, not the one PyInstaller's bootloader made.

The bootloader restarts itself with `_PYI_*` variables and the bundle in front of
LD_LIBRARY_PATH; a foreign IPAM delegate (or iptables) must not inherit either.
"""

from __future__ import annotations

import json
import os

import pytest
from helpers import unique_subnet_v4

from cni.childenv import child_env


def test_frozen_drops_bootloader_variables_and_restores_library_path():
    env = {"PATH": "/bin", "_PYI_ARCHIVE_FILE": "/x/pycni", "_PYI_PARENT_PROCESS_LEVEL": "1",
           "LD_LIBRARY_PATH": "/x/_internal:/opt/lib", "LD_LIBRARY_PATH_ORIG": "/opt/lib",
           "CNI_COMMAND": "ADD"}
    expected = {"PATH": "/bin", "LD_LIBRARY_PATH": "/opt/lib", "CNI_COMMAND": "ADD"}
    assert child_env(env, frozen=True) == expected


def test_frozen_without_original_library_path_unsets_it():
    env = {"LD_LIBRARY_PATH": "/x/_internal", "_PYI_APPLICATION_HOME_DIR": "/x/_internal"}
    assert child_env(env, frozen=True) == {}


def test_not_frozen_keeps_library_path():
    env = {"LD_LIBRARY_PATH": "/opt/lib", "HOME": "/root"}
    assert child_env(env, frozen=False) == env


RECORDER = """#!/bin/sh
env > "{out}/env.$CNI_COMMAND"
cat > "{out}/stdin.$CNI_COMMAND"
if [ "$CNI_COMMAND" = ADD ]; then
  printf '{{"cniVersion":"1.0.0","ips":[{{"address":"{addr}","gateway":"{gw}"}}]}}'
fi
"""


@pytest.mark.root
@pytest.mark.parametrize("original", [None, "/opt/vendor/lib"])
def test_foreign_ipam_delegate_gets_the_runtime_environment(run_plugin, bin_dir, netns, state_dir,
                                                            bridge_name, original):
    subnet = unique_subnet_v4()
    hosts = list(subnet.hosts())
    tools = state_dir / "vendor"
    tools.mkdir()
    recorder = tools / "recorder-ipam"
    recorder.write_text(RECORDER.format(out=state_dir, addr=f"{hosts[4]}/{subnet.prefixlen}", gw=hosts[0]))
    recorder.chmod(0o755)
    config = {"cniVersion": "1.0.0", "name": "envnet", "type": "bridge", "bridge": bridge_name,
              "ipam": {"type": "recorder-ipam", "vendorKey": [1, 2]}}
    extra = {"LD_LIBRARY_PATH": original} if original else {}
    ns = netns()
    run_plugin(bin_dir / "bridge", "ADD", config, netns=ns.path, cni_path=[tools, bin_dir],
               extra_env=extra).check()
    run_plugin(bin_dir / "bridge", "DEL", config, netns=ns.path, cni_path=[tools, bin_dir],
               extra_env=extra).check()
    for verb in ("ADD", "DEL"):
        seen = dict(line.split("=", 1) for line in (state_dir / f"env.{verb}").read_text().splitlines()
                    if "=" in line)
        assert not [k for k in seen if k.startswith("_PYI_")]
        assert seen.get("LD_LIBRARY_PATH") == original
        assert seen["CNI_COMMAND"] == verb
        assert seen["CNI_NETNS"] == ns.path
        assert seen["CNI_PATH"] == os.pathsep.join([str(tools), str(bin_dir)])
        assert json.loads((state_dir / f"stdin.{verb}").read_text())["ipam"]["vendorKey"] == [1, 2]
