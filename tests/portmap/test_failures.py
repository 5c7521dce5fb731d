"""portmap when the host fails it: an ADD that fails half-way leaves nothing; a broken backend the
attachment does not use cannot fail its DEL."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from helpers.xtables import XTABLES_BOUND, HeldLock, legacy_tools

pytestmark = pytest.mark.root


def test_failed_ipv6_half_removes_the_ipv4_half(node, pods):
    """The IPv4 rules went in, the IPv6 ones could not (their mark chain is missing there)."""
    node.sh("iptables", "-t", "nat", "-N", "PMFAIL-MARK")  # only IPv4 has it
    net = pods.network({"externalSetMarkChain": "PMFAIL-MARK"})
    before = node.iptables_save(4), node.iptables_save(6)
    with pytest.raises(AssertionError) as failed:
        pods([{"HostPort": 18080, "ContainerPort": 80, "Protocol": "tcp", "HostIP": ""}], net=net)
    assert '"code":999' in str(failed.value) and "PMFAIL-MARK" in str(failed.value)
    after = node.iptables_save(4), node.iptables_save(6)
    assert not [line for fam in after for line in fam if "CNI-DN-" in line], "no half of the rules stays"
    assert [line for line in after[0] if "PMFAIL" in line] == [line for line in before[0] if "PMFAIL" in line]


def test_a_broken_nft_does_not_fail_del_of_an_iptables_pod(node, pods, tmp_path):
    """DEL looks in both backends; an nft that fails (a kernel without nf_tables, say) is logged, or
    the iptables attachment's DEL would fail for ever and its rules stay."""
    pod = pods([{"HostPort": 18081, "ContainerPort": 80, "Protocol": "tcp", "HostIP": ""}])
    assert any(pod.cid in line for line in node.iptables_save(4))
    fake = tmp_path / "tools"
    fake.mkdir()
    (fake / "nft").write_text('#!/bin/sh\necho "Error: Could not process rule: Operation not supported" >&2\n'
                              "exit 1\n")
    (fake / "nft").chmod(0o755)
    node.sh("nft", "add", "table", "ip", "cni_hostport")  # something to read: DEL runs nft, which fails
    out = pod.run("del", extra_env={"PATH": f"{fake}:/usr/sbin:/usr/bin:/sbin:/bin"})
    assert out.ok, out.describe()
    pod.deleted = True
    assert "Operation not supported" in out.stderr  # said in the log, not fatal
    assert not any(pod.cid in line for line in node.iptables_save(4) + node.iptables_save(6))


def _tool(directory: Path, name: str, body: str) -> None:
    directory.mkdir(exist_ok=True)
    (directory / name).write_text("#!/bin/sh\n" + body + "\n")
    (directory / name).chmod(0o755)


def test_a_hung_nft_is_try_again_later_and_leaves_nothing_half_done(node, pods, tmp_path):
    """An nft still running at its bound is killed and the call fails with code 11: a DEL keeps the
    rules for the runtime's retry; an ADD whose IPv6 batch hangs removes the IPv4 rules it made."""
    pod = pods([{"HostPort": 18082, "ContainerPort": 80, "Protocol": "tcp", "HostIP": ""}],
               portmap={"backend": "nftables"})
    assert pod.cid in json.dumps(node.nft("ip"))
    nft = shutil.which("nft")
    _tool(tmp_path / "hung", "nft", "exec sleep 60")
    # IPv4's batch goes to the real nft, IPv6's hangs: the ADD has begun when it fails.
    _tool(tmp_path / "v6hung", "nft", f'''if [ "$1" = "-f" ]; then
  script=$(cat)
  case "$script" in *ip6*) exec sleep 60;; esac
  printf '%s\\n' "$script" | exec {nft} "$@"
fi
exec {nft} "$@"''')
    def env(tools: str) -> dict:
        return {"PATH": f"{tmp_path / tools}:/usr/sbin:/usr/bin:/sbin:/bin", "PYCNI_NFT_TIMEOUT": "1"}

    out = pod.run("del", extra_env=env("hung"))
    assert not out.ok and '"code":11' in out.stdout + out.stderr and "nft" in out.stdout + out.stderr, \
        out.describe()
    assert pod.cid in json.dumps(node.nft("ip")), "the rules stay for the retry"
    pod.run("del").check()
    assert pod.cid not in json.dumps(node.nft("ip"))

    out = pod.run("add", extra_env=env("v6hung"))
    assert not out.ok and '"code":11' in out.stdout + out.stderr, out.describe()
    assert pod.cid not in json.dumps(node.nft("ip")) + json.dumps(node.nft("ip6")), \
        "nothing of the failed ADD stays"
    pod.run("del").check()
    pod.deleted = True


def test_the_xtables_lock_held_past_its_bound_is_try_again_later(node, pods, tmp_path):
    """The legacy backend waits XTABLES_BOUND for the xtables lock, once: an ADD fails with code 11
    and leaves nothing, a DEL fails the same way (not once per retry or family) and keeps the rules,
    and both succeed once the lock is free."""
    env = {"PATH": f"{legacy_tools(tmp_path / 'legacy')}:/usr/sbin:/usr/bin:/sbin:/bin"}
    pod = pods([{"HostPort": 18083, "ContainerPort": 80, "Protocol": "tcp", "HostIP": ""}])
    pod.run("del").check()  # made on the default backend; from here on the legacy one

    def legacy_rules() -> str:
        return "\n".join(node.sh(f"{t}-legacy-save", "-t", "nat").stdout for t in ("iptables", "ip6tables"))

    def held_for(command: str) -> tuple[object, float]:
        lock = HeldLock(node.lock)
        try:
            t0 = time.monotonic()
            out = pod.run(command, extra_env=env)
            return out, time.monotonic() - t0
        finally:
            lock.release()

    try:
        out, waited = held_for("add")
        assert not out.ok and '"code":11' in out.stdout + out.stderr and "xtables lock" in out.stdout, \
            out.describe()
        assert XTABLES_BOUND <= waited < 2 * XTABLES_BOUND, waited
        assert pod.cid not in legacy_rules()
        pod.run("del", extra_env=env).check()

        pod.run("add", extra_env=env).check()
        assert pod.cid in legacy_rules()
        out, waited = held_for("del")
        assert not out.ok and '"code":11' in out.stdout + out.stderr, out.describe()
        assert XTABLES_BOUND <= waited < 2 * XTABLES_BOUND, waited
        assert pod.cid in legacy_rules(), "the rules stay for the retry"
    finally:
        pod.run("del", extra_env=env)
    pod.deleted = True
    assert pod.cid not in legacy_rules()
