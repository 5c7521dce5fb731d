"""`pycni status` and `pycni gc` as built, on hostile input: clear answers, never a traceback."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path


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
