"""The report of a run that measured both of our launch paths: every table has a column per side
(ours cold, ours warm, the reference) and a ratio to the reference per path of ours; the header
names the reference by its version and path and states the warm process's memory. A cold-only
run's tables keep their two columns."""

from __future__ import annotations

from bench import report
from bench.scenarios import BRIDGE, order

REF = "/var/cache/x/plugins-v1.9.1"


def _run(sides: list[str]) -> dict:
    lat = {s: {"ADD": [0.010, 0.012], "CHECK": [0.004], "DEL": [0.008]} for s in sides}
    lat["warm"] = {"ADD": [0.002], "CHECK": [0.001], "DEL": [0.0015]} if "warm" in sides else {}
    lat = {k: v for k, v in lat.items() if k in sides}
    res = {
        "sides": sides,
        "machine": {"date": "d", "nproc": "2", "cpu": "c", "kernel": "k", "distro": "x", "python": "3",
                    "pyinstaller": "6", "commit": "abc", "loadavg": "0.1 0.1 0.1"},
        "config": {"quick": False, "iterations": 2, "ours": "/o", "ref": REF, "memory_cycles": 1,
                   "ref_about": "CNI plugins v1.9.1", "cni_version": "1.1.0"},
        "available": {s: {"bridge": True} for s in sides},
        "latency": {BRIDGE: {**lat, "ref": {"ADD": [0.004], "CHECK": [0.002], "DEL": [0.004]}}},
        "per_plugin": {BRIDGE: {s: {"ADD bridge": [0.003 if s == "warm" else 0.009]} for s in sides}},
        "memory": {"method": "GNU time",
                   "peak_kib": {s: {"bridge": 2048 * (1 + (s == "ours"))} for s in sides}},
        "failures": {s: {} for s in sides}, "calls": {s: 3 for s in sides}, "errors": [],
    }
    if "warm" in sides:
        res["warm"] = {"pid": 42, "rss_kib": 30 * 1024, "hwm_kib": 31 * 1024, "anon_kib": 10 * 1024,
                       "served": 9, "refused": 0}
    res["targets"] = report.evaluate(res)
    return res


def test_both_paths_side_by_side() -> None:
    md = report.markdown(_run(["ours", "warm", "ref"]))
    first = md.splitlines()[0]
    assert f"reference CNI plugins v1.9.1 from `{REF}`," in first, first
    assert "Warm path: `pycni serve` (pid 42)" in md and "30.0 MiB resident (10.0 MiB of it anonymous)" in md
    assert "handed 9 calls to a child" in md
    assert ("| chain | verb | ours cold median | p90 | p99 | ours warm median | p90 | p99 | reference median "
            "| p90 | p99 | ours cold/ref | ours warm/ref |") in md
    row = ("| `bridge+host-local` | ADD | 11.0 | 11.8 | 12.0 | 2.0 | 2.0 | 2.0 | 4.0 | 4.0 | 4.0 "
           "| 2.75× | 0.50× |")
    assert row in md, md
    assert "| plugin | ours cold | ours warm | reference | ours cold/ref | ours warm/ref |" in md
    assert "| `bridge` | 4.0 MiB | 2.0 MiB | 2.0 MiB | 2.00× | 1.00× |" in md
    assert "Failures: ours cold 0, ours warm 0, reference 0 (of 3, 3, 3 plugin processes)." in md


def test_cold_only_keeps_two_columns() -> None:
    md = report.markdown(_run(["ours", "ref"]))
    assert "Warm path" not in md
    assert "| chain | verb | ours median | p90 | p99 | reference median | p90 | p99 | ours/ref |" in md
    assert "| plugin | ours | reference | ours/ref |" in md


def test_each_side_goes_first_in_turn() -> None:
    sides = ("ours", "warm", "ref")
    firsts = [order(i, sides)[0] for i in range(6)]
    assert sorted(firsts) == sorted(sides * 2)
    assert all(sorted(order(i, sides)) == sorted(sides) for i in range(6))
    assert [order(i)[0] for i in range(2)] == ["ours", "ref"]  # two sides: as before, alternating
