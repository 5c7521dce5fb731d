"""cni.net.nfexists answers as `nft list` does, in a namespace of the test's own; and
iptables.in_nf_tables tells iptables-nft from iptables-legacy by where `iptables-save` resolves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ASK = """
import json, sys
from cni.net.nfexists import Probe
with Probe() as p:
    print(json.dumps([p.table("ip", "nat"), p.chain("ip", "nat", "PCNI-X"), p.chain("ip6", "nat", "PCNI-X"),
                      p.table("ip", "cni_hostport"), p.table("ip6", "cni_hostport")]))
"""


def _ask(ns) -> list[bool]:
    out = ns.exec("env", f"PYTHONPATH={REPO}", sys.executable, "-c", ASK).stdout
    return json.loads(out)


def test_probe_sees_what_nft_lists(ns) -> None:
    assert _ask(ns) == [False, False, False, False, False]
    ns.exec("iptables", "-t", "nat", "-N", "PCNI-X")  # iptables-nft: a chain of table ip nat
    assert ns.exec("nft", "list", "chain", "ip", "nat", "PCNI-X", check=False).returncode == 0
    assert _ask(ns) == [True, True, False, False, False]
    ns.exec("nft", "add", "table", "ip6", "cni_hostport")
    assert _ask(ns) == [True, True, False, False, True]


@pytest.mark.parametrize(("target", "expected"),
                         [("xtables-nft-multi", True), ("xtables-legacy-multi", False)])
def test_in_nf_tables_follows_the_links(tmp_path: Path, target: str, expected: bool) -> None:
    real = Path("/usr/sbin") / target
    if not real.exists():
        pytest.skip(f"{real} missing (Debian package iptables)")
    (tmp_path / "alternatives").mkdir()
    (tmp_path / "alternatives" / "iptables-save").symlink_to(real)  # absolute, as /etc/alternatives
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "iptables-save").symlink_to("../alternatives/iptables-save")  # relative
    code = "from cni.net.firewall.iptables import in_nf_tables; print(in_nf_tables())"
    env = {**os.environ, "PATH": str(tmp_path / "bin"), "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == str(expected), out.stderr
