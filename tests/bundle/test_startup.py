"""Start-up budget: what a plugin call imports decides its latency, so guard it.

Each plugin module is imported in a fresh interpreter; modules that are excluded from the
bundle, or that cost milliseconds for nothing on every call, must not be among its imports.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cni.plugins import MODULES

REPO = Path(__file__).resolve().parents[2]

# Excluded from the bundle by build.sh, or too slow to import on every call.
FORBIDDEN = {"inspect", "dataclasses", "typing", "pathlib", "bz2", "lzma", "traceback",
             "tempfile", "shutil", "jsonschema", "pyroute2", "filelock", "asyncio", "logging", "json", "re",
             "enum", "subprocess", "socket", "contextlib",
             # importlib.import_module would bring the importlib package and warnings (~0.3 ms)
             "importlib", "warnings",
             # only the operator command (`pycni status`, `pycni gc`) speaks CRI
             "grpc", "google", "cni.cri", "cni.ops", "argparse",
             # the warm process's own modules (`pycni serve`): never on a plugin call
             "cni.warm"}


# How many modules importing each plugin's module adds to the bare interpreter's, with a little
# room: each costs every call about 0.1 ms (a .pyc read and run) to 0.3 ms (an extension module's
# dlopen). A new plugin gets the largest budget; lower these when a change frees modules.
MODULE_BUDGET = {"bandwidth": 33, "bridge": 21, "host-local": 23, "loopback": 30, "ptp": 21, "portmap": 7}

# `os` and what it imports: ~1.2 ms per call (os.environ is built on the collections ABCs). The
# plugins take what they need of it from cni.sysapi (the built-in posix module); only the operator
# command and the paths that start programs (subprocess) load it.
OS = {"os", "posixpath", "genericpath", "stat", "_collections_abc"}

# `ipaddress` and what it pulls in: ~4-7 ms per call. Kept off the paths that have been freed of it
# (cni.addrtext prints and classifies kernel addresses without it; results import it only to parse;
# host-local reads canonical text with cni.addrtext and walks integers; the bridge reads its IPAM's
# answer as canonical text).
IPADDRESS = {"ipaddress", "functools", "collections", "reprlib", "keyword", "operator", "itertools",
             "_collections_abc"}
IPADDRESS_FREE_MODULES = {"bandwidth", "bridge", "host-local", "loopback", "portmap", "ptp"}


_bare: set[str] = set()


def bare_interpreter() -> set[str]:
    """What `python -I -S` imports by itself: the checks below are of the plugins' own imports."""
    if not _bare:
        _bare.update(imported_by("sys"))
    return _bare


def os_free(names: set[str]) -> set[str]:
    """The modules of OS among names that the bare interpreter did not import already; with
    `ipaddress` (whose collections import _collections_abc) only os and its path modules count."""
    found = (OS & names) - bare_interpreter()
    return found - {"_collections_abc"} if "ipaddress" in names else found


def imported_by(module: str) -> set[str]:
    code = f"import sys; sys.path.insert(0, {str(REPO)!r}); import {module}"
    proc = subprocess.run([sys.executable, "-I", "-S", "-X", "importtime", "-c", code],
                          capture_output=True, text=True, check=True)
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


@pytest.mark.parametrize("plugin_type", sorted(MODULES))
def test_plugin_imports_stay_lean(plugin_type):
    names = imported_by(MODULES[plugin_type])
    assert MODULES[plugin_type] in names
    top_level = {n.split(".")[0] for n in names} | names
    assert not FORBIDDEN & top_level, f"{plugin_type} imports {sorted(FORBIDDEN & top_level)}"
    if plugin_type in IPADDRESS_FREE_MODULES:
        assert not IPADDRESS & names, f"{plugin_type} imports {sorted(IPADDRESS & names)}"
    assert not os_free(names), f"{plugin_type} imports {sorted(os_free(names))}"


@pytest.mark.parametrize("plugin_type", sorted(MODULES))
def test_plugin_module_count_within_budget(plugin_type):
    added = imported_by(MODULES[plugin_type]) - bare_interpreter()
    budget = MODULE_BUDGET.get(plugin_type, max(MODULE_BUDGET.values()))
    assert len(added) <= budget, f"{plugin_type}: {len(added)} modules (budget {budget}): {sorted(added)}"


def test_operator_command_is_not_on_the_plugin_path():
    """`pycni --version` (the operator entry without status/gc) does not import grpc either."""
    names = imported_by("cni.cli")
    assert "cni.cli" in names and not {"grpc", "cni.ops", "cni.cri"} & names


def test_entry_and_contract_import_lean():
    names = set()
    for module in ("cni.__main__", "cni.contract.dispatch", "cni.contract.delegate"):
        names |= imported_by(module)
    assert "cni.contract.dispatch" in names
    assert not FORBIDDEN & names
    assert not os_free(names), sorted(os_free(names))


def imported_by_call(plugin_type: str, env: dict[str, str], stdin: bytes,
                     as_bundle: bool = False) -> tuple[int, set[str]]:
    """What one real call of the plugin (from the sources) imports, start to exit. `as_bundle`
    makes the interpreter look like the bundle (sys.frozen), so that a delegate on CNI_PATH that
    is this very executable runs in-process, as the bundle's host-local does under bridge."""
    frozen = "sys.frozen = True; " if as_bundle else ""
    code = (f"import sys; {frozen}sys.path.insert(0, {str(REPO)!r}); from cni.__main__ import entry; "
            f"sys.exit(entry([{plugin_type!r}]))")
    proc = subprocess.run([sys.executable, "-I", "-S", "-X", "importtime", "-c", code], input=stdin,
                          env={**env, "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}, capture_output=True)
    names = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.decode().splitlines()
             if line.startswith("import time:") and "|" in line}
    return proc.returncode, names


@pytest.mark.root
def test_real_calls_import_lean(netns, bridge_name, tmp_path):
    """An L2 bridge ADD and DEL, a bridge ADD and DEL with host-local in-process, a dual-stack ptp
    ADD and DEL with host-local in-process, host-local's own ADD and DEL, and loopback, bandwidth
    and portmap (without mappings) verbs, for real in a namespace: lazily imported modules show up
    here, where an import at the top of a module would not. None loads `os`; loopback's verbs,
    bandwidth's with a prevResult and portmap's without mappings do not load `ipaddress` either."""
    ns = netns()
    (tmp_path / "host-local").symlink_to(sys.executable)  # "this bundle" under as_bundle
    env = {"CNI_CONTAINERID": "lean1", "CNI_NETNS": ns.path, "CNI_IFNAME": "eth0", "CNI_PATH": str(tmp_path)}
    bridge = json.dumps({"cniVersion": "1.0.0", "name": "lean", "type": "bridge",
                         "bridge": bridge_name}).encode()
    hostlocal = {"type": "host-local", "dataDir": str(tmp_path / "ipam"),
                 "ranges": [[{"subnet": "10.231.7.0/24"}]]}
    bridge_ipam = json.dumps({"cniVersion": "1.0.0", "name": "lean-ipam", "type": "bridge",
                              "bridge": bridge_name, "ipam": hostlocal}).encode()
    ptp = json.dumps({"cniVersion": "1.0.0", "name": "lean-ptp", "type": "ptp",
                      "ipam": {**hostlocal, "ranges": [[{"subnet": "10.231.8.0/24"}],
                                                       [{"subnet": "fd00:231:8::/64"}]],
                               "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0"}]}}).encode()
    ipam_only = json.dumps({"cniVersion": "1.0.0", "name": "lean-hl", "type": "host-local",
                            "ipam": hostlocal}).encode()
    loopback = json.dumps({"cniVersion": "1.0.0", "name": "lean", "type": "loopback"}).encode()
    prev = {"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": ns.path}],
            "ips": [{"address": "10.9.0.5/24", "gateway": "10.9.0.1", "interface": 0},
                    {"address": "fd00:9::5/64", "gateway": "fd00:9::1", "interface": 0}],
            "routes": [{"dst": "0.0.0.0/0", "gw": "10.9.0.1"}, {"dst": "::/0"}]}
    bandwidth = json.dumps({"cniVersion": "1.0.0", "name": "lean", "type": "bandwidth",
                            "prevResult": prev}).encode()
    portmap = json.dumps({"cniVersion": "1.0.0", "name": "lean", "type": "portmap", "prevResult": prev,
                          "runtimeConfig": {"portMappings": []}}).encode()
    for plugin_type, command, stdin in (("bridge", "ADD", bridge), ("bridge", "DEL", bridge),
                                        ("bridge", "ADD", bridge_ipam), ("bridge", "DEL", bridge_ipam),
                                        ("ptp", "ADD", ptp), ("ptp", "DEL", ptp),
                                        ("host-local", "ADD", ipam_only), ("host-local", "DEL", ipam_only),
                                        ("loopback", "ADD", loopback), ("loopback", "CHECK", loopback),
                                        ("loopback", "DEL", loopback), ("bandwidth", "ADD", bandwidth),
                                        ("bandwidth", "DEL", bandwidth), ("portmap", "ADD", portmap),
                                        ("portmap", "CHECK", portmap), ("portmap", "DEL", portmap)):
        rc, names = imported_by_call(plugin_type, {**env, "CNI_COMMAND": command}, stdin,
                                     as_bundle=stdin in (bridge_ipam, ptp))
        assert rc == 0, (plugin_type, command)
        assert "cni.contract.dispatch" in names and MODULES[plugin_type] in names
        if plugin_type in ("bridge", "loopback", "bandwidth", "ptp"):  # not portmap (no mappings), host-local
            assert {"cni.net.link", "cni.net.netns"} <= names
        if stdin in (bridge_ipam, ptp):  # the delegate ran in this process
            assert "ipam.hostlocal" in names and "cni.bounded" not in names
        assert not FORBIDDEN & names, f"{plugin_type} {command} imports {sorted(FORBIDDEN & names)}"
        assert not os_free(names), f"{plugin_type} {command} imports {sorted(os_free(names))}"
        assert "ctypes" not in names
        assert not IPADDRESS & names, f"{plugin_type} {command} imports {sorted(IPADDRESS & names)}"
    assert not any((tmp_path / "ipam").glob("*/10.231.[78].*")), "every address was released again"


@pytest.mark.root
def test_calls_that_do_not_read_prev_result_addresses_import_no_ipaddress(netns, bridge_name, tmp_path):
    """A list's CHECK and DEL give every plugin the cached result as prevResult: loopback's verbs
    (which pass it on or never read it) and bridge's and ptp's DEL (which remove the interface by
    name) keep its canonical addresses as text and load no `ipaddress`; loopback ADD still passes
    that prevResult on unchanged."""
    ns = netns()
    env = {"CNI_CONTAINERID": "lean4", "CNI_NETNS": ns.path, "CNI_IFNAME": "eth0", "CNI_PATH": str(tmp_path)}
    prev = {"cniVersion": "1.1.0", "interfaces": [{"name": "eth0", "sandbox": ns.path}],
            "ips": [{"address": "10.9.0.5/24", "gateway": "10.9.0.1", "interface": 0},
                    {"address": "fd00:9::5/64", "gateway": "fd00:9::1", "interface": 0}],
            "routes": [{"dst": "0.0.0.0/0", "gw": "10.9.0.1"}, {"dst": "::/0"}]}
    loopback = {"cniVersion": "1.1.0", "name": "lean4", "type": "loopback", "prevResult": prev}
    bridge = {"cniVersion": "1.1.0", "name": "lean4", "type": "bridge", "bridge": bridge_name,
              "prevResult": prev}
    ptp = {"cniVersion": "1.1.0", "name": "lean4", "type": "ptp", "prevResult": prev,
           "ipam": {"type": "host-local", "dataDir": str(tmp_path / "ipam"),
                    "ranges": [[{"subnet": "10.231.9.0/24"}]]}}
    (tmp_path / "host-local").symlink_to(sys.executable)  # "this bundle" under as_bundle
    for plugin_type, command, conf in (("loopback", "ADD", loopback), ("loopback", "CHECK", loopback),
                                       ("loopback", "DEL", loopback), ("bridge", "DEL", bridge),
                                       ("ptp", "DEL", ptp)):
        rc, names = imported_by_call(plugin_type, {**env, "CNI_COMMAND": command}, json.dumps(conf).encode(),
                                     as_bundle=plugin_type == "ptp")
        assert rc == 0, (plugin_type, command)
        assert MODULES[plugin_type] in names
        assert "ipaddress" not in names, f"{plugin_type} {command} imports ipaddress"
    out = subprocess.run([sys.executable, "-I", "-S", "-c", f"import sys; sys.path.insert(0, {str(REPO)!r}); "
                          "from cni.__main__ import entry; sys.exit(entry(['loopback']))"],
                         input=json.dumps(loopback).encode(), env={**env, "CNI_COMMAND": "ADD"},
                         capture_output=True, check=True).stdout
    assert json.loads(out) == prev
    shown = subprocess.run(["ip", "-n", ns.name, "-o", "link", "show", "lo"], capture_output=True, text=True,
                           check=True).stdout
    assert "state UNKNOWN" in shown or ",UP" in shown, shown


@pytest.mark.root
def test_layer3_bridge_reads_its_ipam_answer_without_ipaddress(bin_dir, netns, bridge_name, tmp_path):
    """A bridge ADD with gateway and default routes on both families, its IPAM (the bundle's
    host-local, run here as a separate executable) answering in canonical text: the addresses, gateways and
    routes are planned and put in the kernel on `cni.addrtext` values alone; so is DEL."""
    ns = netns()
    path = tmp_path / "bin"
    path.mkdir()
    (path / "host-local").symlink_to(Path(bin_dir, "host-local").resolve())
    conf = json.dumps({"cniVersion": "1.1.0", "name": "lean3", "type": "bridge", "bridge": bridge_name,
                       "isGateway": True, "isDefaultGateway": True,
                       "ipam": {"type": "host-local", "dataDir": str(tmp_path / "ipam"),
                                "ranges": [[{"subnet": "10.250.9.0/24"}], [{"subnet": "fd00:250:9::/64"}]],
                                "routes": [{"dst": "10.251.0.0/16"}]}}).encode()
    env = {"CNI_CONTAINERID": "lean3", "CNI_NETNS": ns.path, "CNI_IFNAME": "eth0", "CNI_PATH": str(path)}
    for command in ("ADD", "DEL"):
        rc, names = imported_by_call("bridge", {**env, "CNI_COMMAND": command}, conf)
        assert rc == 0, command
        assert "cni.plugins.bridge" in names
        # run from the sources, the delegate is a separate process (subprocess brings functools and
        # collections here; the bundle runs its own host-local in-process instead)
        assert "ipaddress" not in names, f"bridge {command} imports ipaddress"
        if command == "ADD":
            assert {"cni.net.addr", "cni.net.route", "cni.plugins.bridge.gateways"} <= names
            shown = subprocess.run(["ip", "-n", ns.name, "-o", "addr", "show", "dev", "eth0"],
                                   capture_output=True, text=True, check=True).stdout
            assert "10.250.9.2/24" in shown and "fd00:250:9::2/64" in shown, shown
            routes = subprocess.run(["ip", "-n", ns.name, "route", "show"], capture_output=True, text=True,
                                    check=True).stdout
            assert "default via 10.250.9.1 dev eth0" in routes and "10.251.0.0/16 via 10.250.9.1" in routes
            on_bridge = subprocess.run(["ip", "-o", "addr", "show", "dev", bridge_name], capture_output=True,
                                       text=True, check=True).stdout
            assert "10.250.9.1/24" in on_bridge and "fd00:250:9::1/64" in on_bridge, on_bridge


def test_host_local_calls_import_lean(tmp_path):
    """Every host-local verb over a canonical config (IPv4 and IPv6 range sets, rangeStart/rangeEnd,
    a gateway, routes, a requested address) runs without `ipaddress`; text only `ipaddress` can read
    (upper case here) still takes it, so this check would see it."""
    data_dir = tmp_path / "ipam"
    ipam = {"type": "host-local", "dataDir": str(data_dir),
            "ranges": [[{"subnet": "10.77.0.0/24", "rangeStart": "10.77.0.10", "rangeEnd": "10.77.0.20",
                         "gateway": "10.77.0.1"}], [{"subnet": "fd00:77::/64"}]],
            "routes": [{"dst": "0.0.0.0/0", "gw": "10.77.0.1"}, {"dst": "fd00:78::/48"}]}
    conf = {"cniVersion": "1.1.0", "name": "lean", "type": "host-local", "ipam": ipam}
    wanted = {**conf, "runtimeConfig": {"ips": ["10.77.0.15/24"]}}
    env = {"CNI_NETNS": "/var/run/netns/unused", "CNI_IFNAME": "eth0", "CNI_PATH": str(tmp_path)}
    both = ["10.77.0.10", "10.77.0.15", "fd00:77::2", "fd00:77::3"]
    calls = [("ADD", "lean1", conf, ["10.77.0.10", "fd00:77::2"]), ("ADD", "lean2", wanted, both),
             ("CHECK", "lean1", conf, both), ("STATUS", "", conf, both),
             ("DEL", "lean1", conf, ["10.77.0.15", "fd00:77::3"]),
             ("GC", "", {**conf, "cni.dev/valid-attachments": [{"containerID": "lean2", "ifname": "eth0"}]},
              ["10.77.0.15", "fd00:77::3"]),
             ("DEL", "lean2", conf, [])]
    for command, cid, config, held in calls:
        call_env = {**env, "CNI_COMMAND": command, "CNI_CONTAINERID": cid}
        rc, names = imported_by_call("host-local", call_env, json.dumps(config).encode())
        assert rc == 0, (command, cid)
        assert "ipam.hostlocal" in names and "ipam.store" in names
        assert not FORBIDDEN & names, f"host-local {command} imports {sorted(FORBIDDEN & names)}"
        assert not IPADDRESS & names, f"host-local {command} imports {sorted(IPADDRESS & names)}"
        files = sorted(p.name for p in (data_dir / "lean").iterdir())
        assert files == [*held, "last_reserved_ip.0", "last_reserved_ip.1", "lock"], (command, files)
    upper = {**conf, "ipam": {**ipam, "ranges": [[{"subnet": "FD00:77::/64"}]]}}
    rc, names = imported_by_call("host-local", {**env, "CNI_COMMAND": "ADD", "CNI_CONTAINERID": "lean3"},
                                 json.dumps(upper).encode())
    assert rc == 0 and "ipaddress" in names


@pytest.mark.root
def test_bundle_serves_the_plugin_path_frozen_and_the_rest_from_internal(bin_dir, netns, tmp_path):
    """The launcher carries the plugins' modules frozen (conf/freeze.py): a copy of the bundle
    without their .pyc files still runs a loopback ADD, and the operator command, whose modules
    are not frozen, still loads them from _internal through the frozen `cni` package's path."""
    import shutil

    bundle = tmp_path / "pycni"
    shutil.copytree(Path(bin_dir, "loopback").resolve().parent, bundle, symlinks=True)
    internal = bundle / "_internal"
    removed = [p for p in (*internal.glob("cni/**/*.pyc"), *internal.glob("ipam/**/*.pyc"))
               if not p.relative_to(internal).as_posix().startswith(("cni/cli", "cni/ops/", "cni/cri/"))]
    assert any(p.name == "loopback.pyc" for p in removed) and any(p.name == "store.pyc" for p in removed)
    for p in removed:
        p.unlink()
    (bundle / "loopback").symlink_to("pycni")
    ns = netns()
    env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "frozen1", "CNI_NETNS": ns.path, "CNI_IFNAME": "eth0",
           "CNI_PATH": str(bundle), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYCNI_WARM_SOCKET": "off"}
    proc = subprocess.run([str(bundle / "loopback")], env=env, capture_output=True,
                          input=b'{"cniVersion": "1.1.0", "name": "frozen", "type": "loopback"}')
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [ip["address"] for ip in json.loads(proc.stdout)["ips"]] == ["127.0.0.1/8", "::1/128"]
    version = subprocess.run([str(bundle / "pycni"), "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("pycni "), version.stdout + version.stderr
    # and without the operator command's own .pyc it cannot start: those really come from _internal
    (internal / "cni" / "cli.pyc").unlink()
    broken = subprocess.run([str(bundle / "pycni"), "--version"], capture_output=True, text=True)
    assert broken.returncode != 0 and "cni.cli" in broken.stdout + broken.stderr


def test_hash_names_and_proc_files_load_no_extra_modules():
    """Naming an IFB device or chain by hash, reading a sysctl and the scheduler clock: no
    `hashlib` (it loads every algorithm it offers, OpenSSL's too), no codec module."""
    code = (f"import sys; sys.path.insert(0, {str(REPO)!r}); from cni.names import hashed_name; "
            "from cni.net import sysctl, tc; name = hashed_name('bwp', 'c1', 15); "
            "sysctl.read('net/ipv4/ip_forward'); tc.tick_in_usec(); "
            "print(name, sorted({'hashlib', '_hashlib', 'encodings.ascii'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True)
    import hashlib

    assert out.stdout.split() == [("bwp" + hashlib.sha512(b"c1").hexdigest())[:15], "[]"], out.stdout


# Run by a launcher built as build.sh builds the bundle's: how the modules of a plugin call were
# served, one line each (name, loader, origin, __name__), then the state of zipimport and of the
# cyclic garbage collector.
PROBE = '''
import gc
import sys


def entry(argv):
    if argv[1:] == ["missing"]:
        try:
            import _json  # noqa: F401
        except ImportError as exc:
            print("ImportError", exc.name, exc)
        return 0
    import cni.names
    import cni.net._setns
    import cni.plugins.loopback  # noqa: F401
    cni.names.hashed_name("bwp", "c1", 15)  # loads _sha512 if importing cni.names did not
    with open("/proc/self/ns/net") as ns:
        cni.net._setns.setns(ns.fileno(), 0x40000000)
    for name, module in sorted(sys.modules.items()):
        spec = getattr(module, "__spec__", None)
        loader = getattr(spec, "loader", None)
        print(name, getattr(loader, "__name__", type(loader).__name__), getattr(spec, "origin", None),
              module.__name__, sep="\\t")
    print("zipimport", "zipimport" in sys.modules, [getattr(h, "__name__", "") for h in sys.path_hooks])
    print("gc enabled", gc.isenabled())
    return 0
'''


@pytest.mark.root
def test_bundle_serves_its_extension_modules_as_builtins(bin_dir, netns, tmp_path):
    """The top-level extension modules a plugin call loads are the launcher's built-ins
    (conf/freeze.py's inittab): the built-in importer serves them, the launcher dlopen()s the .so
    from _internal (_sha512 too, once cni.names is imported), and one whose .so is gone is an
    ImportError, not a crash. A plugin call installs no zipimport hook and runs without the
    cyclic garbage collector. Seen from inside through a probe launcher built as the bundle's
    is, and from outside in a real loopback ADD, whose only folder listed is cni/net (for
    cni.net._setns): not _internal, not lib-dynload."""
    import shutil

    real = Path(bin_dir, "loopback").resolve().parent
    internal = real / "_internal"
    bundle = tmp_path / "pycni"
    shutil.copytree(real, bundle, symlinks=True)
    (bundle / "_internal" / "pycni_probe.py").write_text(PROBE)
    build = subprocess.run(["bash", str(REPO / "build.sh"), "launcher", str(bundle / "probe"), "pycni_probe",
                            "probe", "pycni_probe", "cni.names", "cni.net._setns", "cni.plugins.loopback"],
                           cwd=REPO, capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    proc = subprocess.run([str(bundle / "probe")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    served = {name: (loader, origin, own) for name, loader, origin, own in
              (line.split("\t") for line in lines[:-2])}
    assert served["_json"][:2] == ("BuiltinImporter", "built-in")  # a .so even in Debian's python3.11
    # a module of a package stays on the path finder (3.11.2's built-in importer declines those)
    assert served["cni.net._setns"][0] == "ExtensionFileLoader"
    from_files = [n for n, (loader, _, _) in served.items() if loader == "ExtensionFileLoader"]
    assert from_files == ["cni.net._setns"], served  # _sha512 too is a built-in (cni.names)
    assert lines[-2] == "zipimport False ['path_hook_for_FileFinder']", lines[-2]
    assert lines[-1] == "gc enabled False", lines[-1]

    for so in (bundle / "_internal").rglob("_json.*.so"):
        so.unlink()
    missing = subprocess.run([str(bundle / "probe"), "missing"], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 0, missing.stdout + missing.stderr
    assert missing.stdout.startswith("ImportError _json cannot load _json: "), missing.stdout

    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed (build.sh deps test installs it)")
    ns = netns()
    env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "builtin1", "CNI_NETNS": ns.path, "CNI_IFNAME": "eth0",
           "CNI_PATH": str(tmp_path), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "PYCNI_WARM_SOCKET": "off"}
    traced = subprocess.run([strace, "-f", "-qq", "-e", "trace=openat", "-o", str(tmp_path / "trace"),
                             str(Path(bin_dir, "loopback"))], env=env, capture_output=True, timeout=60,
                            input=b'{"cniVersion": "1.1.0", "name": "builtin", "type": "loopback"}')
    assert traced.returncode == 0, traced.stdout + traced.stderr
    opened = [line for line in (tmp_path / "trace").read_text().splitlines() if f'"{internal}/' in line]
    listed = [line.split('"')[1] for line in opened if "O_DIRECTORY" in line]
    assert listed == [f"{internal}/cni/net"], opened
    assert any("/_json." in line for line in opened), opened
    # the launcher has no libpython of its own: the cold path loads the bundle's
    assert any(f'"{internal}/libpython' in line for line in opened), opened


@pytest.mark.root
def test_a_warm_call_loads_no_module(bin_dir, netns, tmp_path):
    """The warm path of the same loopback ADD: the launcher opens nothing under _internal and no
    libpython anywhere (it is linked against libc alone and loads libpython only to run a call
    cold, conf/pyapi.h), and the child that serves the call (the spare, traced with the warm
    process) opens nothing there: every module it runs was imported once, before any call, and
    the plugin's config schema read and its patterns compiled."""
    import shutil
    import signal
    import time

    from helpers.warm import WarmServer, wait_for

    strace = shutil.which("strace")
    if strace is None:
        pytest.skip("strace is not installed (build.sh deps test installs it)")
    internal = Path(bin_dir, "loopback").resolve().parent / "_internal"
    server = WarmServer(bin_dir, tmp_path / "warm")
    tracer = None
    try:
        # the server and the spare child it forked ahead, which takes the call
        spares = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
        assert spares, "pycni serve keeps a spare child"
        attach = [arg for pid in [server.pid, *spares] for arg in ("-p", str(pid))]
        tracer = subprocess.Popen([strace, "-f", "-qq", "-e", "trace=openat", "-o", str(tmp_path / "child"),
                                   *attach], stderr=subprocess.DEVNULL)
        time.sleep(1)  # strace attaches
        ns = netns()
        env = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "warm1", "CNI_NETNS": ns.path, "CNI_IFNAME": "eth0",
               "CNI_PATH": str(tmp_path), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", **server.env}
        traced = subprocess.run([strace, "-f", "-qq", "-e", "trace=openat", "-o", str(tmp_path / "launcher"),
                                 str(Path(bin_dir, "loopback"))], env=env, capture_output=True, timeout=60,
                                input=b'{"cniVersion": "1.1.0", "name": "warm", "type": "loopback"}')
        assert traced.returncode == 0, traced.stdout + traced.stderr
        assert [ip["address"] for ip in json.loads(traced.stdout)["ips"]] == ["127.0.0.1/8", "::1/128"]
        assert wait_for(lambda: server.served() == 1), server.log()
    finally:
        try:
            if tracer is not None:
                tracer.send_signal(signal.SIGINT)
                try:
                    tracer.wait(timeout=30)
                except subprocess.TimeoutExpired:  # strace stuck detaching: never leave it behind
                    tracer.kill()
                    tracer.wait(timeout=30)
        finally:
            server.stop()
    # (the loader looks for libc under the $ORIGIN rpath first and finds nothing there)
    tried = [line for line in (tmp_path / "launcher").read_text().splitlines() if "openat(" in line]
    opened = [line.split('"')[1] for line in tried if "= -1 " not in line]
    assert any("libc.so" in p for p in opened), tried
    assert not [p for p in opened if p.startswith(f"{internal}/")], tried
    assert not [line for line in tried if "libpython" in line], tried
    traced = (tmp_path / "child").read_text()
    assert Path(ns.path).name in traced, "strace saw the child open the call's namespace"
    child = [line.split('"')[1] for line in traced.splitlines() if f'"{internal}/' in line]
    assert child == [], child  # even the schema: the warm process read it and built its matchers
