"""`pycni status` and `pycni gc` as built, on hostile input: clear answers, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from helpers.cristub import stub_runtime


def _pycni(bin_dir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(bin_dir / "pycni"), *args], capture_output=True, text=True, timeout=120)


def test_status_of_a_broken_conf_dir(tmp_path: Path, bin_dir: Path):
    conf = tmp_path / "net.d"
    conf.mkdir()
    (conf / "00-broken.conflist").write_text('{"name": "x", "plugins": [')
    (conf / "05-list-in-a-conf.conf").write_text('{"name": "y", "plugins": [{"type": "bridge"}]}')
    (conf / "10-odd.conflist").write_text(json.dumps({
        "cniVersion": "1.1.0", "name": "odd", "plugins": [
            {"type": "../../bin/sh"}, {"type": "nowhere"},
            {"type": "bridge", "ipam": {"type": "host-local", "subnet": "not-a-subnet",
                                        "dataDir": str(tmp_path / "ipam")}}]}))
    (conf / "20-big.json").write_bytes(b" " * (2 << 20))
    out = _pycni(bin_dir, "status", "--conf-dir", str(conf), "--bin-dir", str(bin_dir),
                 "--cri-endpoint", f"unix://{tmp_path}/none.sock", "--json")
    assert out.returncode == 0 and "Traceback" not in out.stderr, out
    report = json.loads(out.stdout)
    nets = {n["file"]: n for n in report["networks"]}
    assert list(nets) == ["00-broken.conflist", "05-list-in-a-conf.conf", "10-odd.conflist", "20-big.json"]
    first = nets["00-broken.conflist"]
    assert first["usedByRuntime"] and first["error"].startswith("not JSON")
    assert "network type not found" in nets["05-list-in-a-conf.conf"]["error"]
    assert "larger than" in nets["20-big.json"]["error"]
    odd = nets["10-odd.conflist"]
    assert [p["executable"] for p in odd["plugins"]][:2] == [None, None]
    (hl,) = odd["hostLocal"]
    assert hl["error"] and hl["rangeSets"] == []
    runtime = report["runtime"]
    assert runtime["reachable"] is False and "cannot reach the runtime" in runtime["error"]
    text = _pycni(bin_dir, "status", "--conf-dir", str(conf), "--bin-dir", str(bin_dir),
                  "--cri-endpoint", f"unix://{tmp_path}/none.sock")
    assert text.returncode == 0 and "INVALID" in text.stdout and "NOT REACHABLE" in text.stdout


def test_usage_errors(tmp_path: Path, bin_dir: Path):
    for args in (["gc", "--grace", "-1"], ["gc", "--timeout", "0"], ["status", "--grace", "soon"],
                 ["gc", "--bogus"]):
        out = _pycni(bin_dir, *args)
        assert out.returncode == 2 and "Traceback" not in out.stderr, (args, out)
    out = _pycni(bin_dir, "status", "--conf-dir", str(tmp_path / "missing"))
    assert out.returncode == 1 and "cannot read the CNI config directory" in out.stderr
    out = _pycni(bin_dir, "gc", "--cri-endpoint", "tcp://10.0.0.1:1234", "--conf-dir", str(tmp_path))
    assert out.returncode == 1 and "only unix sockets" in out.stderr
    assert _pycni(bin_dir, "gc", "--help").returncode == 0


# ---- the runtime's answer, and config-named paths -----------------------------------------------------
CID = "4f" * 32


@pytest.fixture
def runtime(tmp_path: Path):
    """A stub runtime on a real CRI socket: ListPodSandbox answers the IDs the test puts in `ids`."""
    with stub_runtime(tmp_path / "cri.sock") as answer:
        yield answer


def _one_network(tmp_path: Path, **ipam) -> tuple[Path, dict]:
    """A conf dir with one list whose bridge takes host-local addresses from a private dataDir."""
    name = f"ops-{uuid.uuid4().hex[:8]}"
    plugin = {"type": "bridge", "bridge": f"br{uuid.uuid4().hex[:8]}",
              "ipam": {"type": "host-local", "dataDir": str(tmp_path / "ipam"), **ipam}}
    conf = tmp_path / "net.d"
    conf.mkdir()
    (conf / "10-ops.conflist").write_text(json.dumps({"cniVersion": "1.1.0", "name": name,
                                                      "plugins": [plugin]}))
    return conf, dict(plugin, name=name, cniVersion="1.1.0")


@pytest.mark.root
@pytest.mark.parametrize("listed", [CID + "\n", f" {CID}", f"{CID} ", "", "\t", CID.upper() + "\x00"])
def test_gc_frees_nothing_when_a_sandbox_id_cannot_be_read(tmp_path, bin_dir, run_plugin, runtime, listed):
    """The live pod's ID as the runtime lists it, but padded or empty: gc refuses (exit 1) and the
    pod keeps its address; listed as it is, the same gc keeps it too, and unlisted frees it."""
    endpoint, ids = runtime
    conf, config = _one_network(tmp_path, subnet="10.99.7.0/24")
    run_plugin(bin_dir / "host-local", "ADD", config, container_id=CID,
               netns="/var/run/netns/ops-test").check()
    store = tmp_path / "ipam" / config["name"]
    held = {"10.99.7.2"}

    def gc() -> subprocess.CompletedProcess:
        return _pycni(bin_dir, "gc", "--conf-dir", str(conf), "--bin-dir", str(bin_dir),
                      "--cri-endpoint", endpoint, "--grace", "0", "--json")

    ids[:] = [listed, "b" * 64]
    out = gc()
    assert out.returncode == 1 and "Traceback" not in out.stderr, out
    assert "cannot be read with certainty" in out.stderr and repr(listed) in out.stderr
    assert json.loads(out.stdout)["networks"] == []
    assert held <= set(os.listdir(store))
    ids[:] = [CID]
    assert gc().returncode == 0 and held <= set(os.listdir(store))
    ids[:] = []
    assert gc().returncode == 0 and not held & set(os.listdir(store)), "unlisted, it is freed"


@pytest.mark.root
@pytest.mark.parametrize("command", ["status", "gc"])
def test_a_fifo_named_by_the_config_answers_within_a_bound(tmp_path, bin_dir, runtime, command):
    """rangeFromFile naming a FIFO (and a FIFO among the conf files): opened plainly, it would wait
    for a writer for ever; the command answers at once, with the error in the store's entry."""
    endpoint, _ = runtime
    fifo = tmp_path / "ranges.fifo"
    os.mkfifo(fifo)
    conf, _ = _one_network(tmp_path, rangeFromFile=str(fifo))
    os.mkfifo(conf / "20-fifo.conflist")
    start = time.monotonic()
    out = subprocess.run([str(bin_dir / "pycni"), command, "--conf-dir", str(conf), "--bin-dir",
                          str(bin_dir), "--cri-endpoint", endpoint, "--json"],
                         capture_output=True, text=True, timeout=60)
    assert time.monotonic() - start < 30 and "Traceback" not in out.stderr, out
    assert out.returncode in ((0,) if command == "status" else (0, 3)), out
    nets = {n["file"]: n for n in json.loads(out.stdout)["networks"]}
    assert list(nets) == ["10-ops.conflist"], "a conf file that is no regular file is no list"
    if command == "status":
        (hl,) = nets["10-ops.conflist"]["hostLocal"]
        assert "a FIFO" in hl["error"], hl


@pytest.mark.root
def test_tools_are_never_looked_up_in_the_working_directory(tmp_path, bin_dir):
    """An empty PATH element means the working directory: a planted iptables-save there would run
    as root. Only absolute directories are searched, as the plugins search them."""
    planted = tmp_path / "cwd"
    planted.mkdir()
    witness = tmp_path / "ran"
    for tool in ("iptables-save", "ip6tables-save", "nft", "ip"):
        (planted / tool).write_text(f"#!/bin/sh\necho {tool} >> {witness}\n")
        (planted / tool).chmod(0o755)
    env = dict(os.environ, PATH=":.:cwd:/usr/sbin:/usr/bin:/sbin:/bin")
    conf, _ = _one_network(tmp_path, subnet="10.99.8.0/24")
    out = subprocess.run([str(bin_dir / "pycni"), "status", "--conf-dir", str(conf), "--bin-dir",
                          str(bin_dir), "--cri-endpoint", f"unix://{tmp_path}/none.sock", "--json"],
                         capture_output=True, text=True, timeout=120, cwd=planted, env=env)
    assert out.returncode == 0, out
    assert not witness.exists(), witness.read_text()


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "infinity", "-0.5", "1e300"])
def test_grace_and_timeout_must_be_finite(tmp_path: Path, bin_dir: Path, value: str):
    for command in ("status", "gc"):
        for option in ("--grace", "--timeout"):
            out = _pycni(bin_dir, command, f"{option}={value}", "--conf-dir", str(tmp_path), "--json")
            assert out.returncode == 2 and "Traceback" not in out.stderr, (command, option, value, out)
            assert out.stdout == "" and "must be a number of seconds" in out.stderr
