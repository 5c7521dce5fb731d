"""The version matrix on the built executables: every verb in every spec version, per plugin type.

ADD prints in the config's version (ip4/ip6 up to 0.2.0, ips[].version and "dns":{} for 0.3.x/0.4.0,
1.x without version and without empty dns, 1.1.0-only fields nowhere else); CHECK exists from
0.4.0, STATUS and GC from 1.1.0, and a version the plugin does not advertise is code 1 for every
verb. VERSION ignores stdin and always answers the same.
"""

from __future__ import annotations

import json
import os

import pytest
from helpers import unique_name, unique_subnet_v4

from .plugin_specs import ALL_VERSIONS, SPECS, Ctx

pytestmark = pytest.mark.root

VERB_MINIMUM = {"ADD": "0.1.0", "DEL": "0.1.0", "CHECK": "0.4.0", "STATUS": "1.1.0", "GC": "1.1.0"}
ONLY_11_KEYS = ("mtu", "socketPath", "pciID", "advmss", "priority", "table", "scope")


def vtuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def allowed(plugin: str, verb: str, version: str) -> bool:
    return version in SPECS[plugin].versions and vtuple(version) >= vtuple(VERB_MINIMUM[verb])


@pytest.fixture
def plugin_path(request, bin_dir):
    path = bin_dir / request.param
    assert path.exists(), f"{request.param} is not built"
    return path


@pytest.fixture
def ctx(netns, state_dir, bridge_name) -> Ctx:
    return Ctx(netns=netns(), state_dir=state_dir, bridge=bridge_name, subnet=unique_subnet_v4(24),
               network=unique_name("mx-", 8))


@pytest.fixture
def ctx_without_netns(state_dir) -> Ctx:
    return Ctx(netns=None, state_dir=state_dir, bridge=unique_name("pcb", 8), subnet=unique_subnet_v4(24),
               network=unique_name("mx-", 8))


def one_json_object(outcome) -> dict:
    """stdout must be exactly one JSON object on one line (what libcni decodes)."""
    text = outcome.stdout.strip()
    assert text and "\n" not in text, outcome.describe()
    value = json.loads(text)
    assert isinstance(value, dict), outcome.describe()
    assert "Traceback" not in outcome.stdout
    return value


def assert_format(out: dict, version: str) -> None:
    """The shape the spec gives a result in `version`, whatever the plugin."""
    assert out["cniVersion"] == version
    text = json.dumps(out)
    if version in ("0.1.0", "0.2.0"):
        assert set(out) <= {"cniVersion", "ip4", "ip6", "dns"}, out
        assert "ip4" in out or "ip6" in out
        assert "dns" in out
        for key in ("ip4", "ip6"):
            if key in out:
                assert set(out[key]) <= {"ip", "gateway", "routes"}
        return
    assert set(out) <= {"cniVersion", "interfaces", "ips", "routes", "dns"}, out
    for key in ONLY_11_KEYS:
        if version != "1.1.0":
            assert f'"{key}"' not in text, (key, out)
    legacy = version in ("0.3.0", "0.3.1", "0.4.0")
    for ip in out.get("ips", []):
        if legacy:
            assert ip["version"] == ("6" if ":" in ip["address"] else "4")
        else:
            assert "version" not in ip
    if legacy:
        assert "dns" in out
    elif "dns" in out:
        assert out["dns"], "1.x leaves an empty dns out"


def run(run_plugin, path, verb, config, ctx: Ctx, **kw):
    return run_plugin(path, verb, config, netns=ctx.netns.path, container_id=ctx.network, **kw)


# ---------------------------------------------------------------- VERSION

@pytest.mark.parametrize("plugin_path", sorted(SPECS), indirect=True)
@pytest.mark.parametrize("stdin", (*ALL_VERSIONS, "garbage"))
def test_version_answer(plugin_path, stdin, run_plugin):
    """VERSION does not read stdin: the same answer whatever the config says."""
    data = b"{not json" if stdin == "garbage" else json.dumps({"cniVersion": stdin, "name": "n"}).encode()
    out = run_plugin(plugin_path, "VERSION", data, netns="", container_id="", ifname="")
    assert out.rc == 0, out.describe()
    assert one_json_object(out) == {"cniVersion": "1.1.0",
                                    "supportedVersions": list(SPECS[plugin_path.name].versions)}


def test_every_built_plugin_has_a_spec(bin_dir):
    # `pycni` beside the plugins is the operator's command, not a CNI type
    built = sorted(p for p in os.listdir(bin_dir) if not p.startswith(".") and p != "pycni")
    assert built, bin_dir
    assert set(built) <= set(SPECS), f"add a spec for {sorted(set(built) - set(SPECS))} in plugin_specs.py"


# ---------------------------------------------------------------- ADD, CHECK, DEL

@pytest.mark.parametrize("plugin_path", sorted(SPECS), indirect=True)
@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_add_check_del(plugin_path, version, run_plugin, ctx):
    spec = SPECS[plugin_path.name]
    config = spec.config(ctx, version)
    if not allowed(plugin_path.name, "ADD", version):
        for verb in ("ADD", "CHECK", "DEL"):
            out = run(run_plugin, plugin_path, verb, config, ctx)
            assert out.rc != 0 and one_json_object(out)["code"] == 1, out.describe()
            assert version in out.json.get("details", "") + out.json["msg"]
        return

    added = run(run_plugin, plugin_path, "ADD", config, ctx)
    assert added.rc == 0, added.describe()
    result = one_json_object(added)
    assert_format(result, version)
    spec.after_add(result, version, ctx)

    with_prev = dict(config, prevResult=result)
    check = run(run_plugin, plugin_path, "CHECK", with_prev, ctx)
    if allowed(plugin_path.name, "CHECK", version):
        assert check.rc == 0 and check.stdout.strip() == "", check.describe()
    else:
        assert check.rc != 0 and one_json_object(check)["code"] == 1, check.describe()
        assert "CHECK" in check.json["msg"]

    del_config = with_prev if vtuple(version) >= (0, 4, 0) else config
    for attempt in (1, 2):  # DEL must succeed again when repeated
        deleted = run(run_plugin, plugin_path, "DEL", del_config, ctx)
        assert deleted.rc == 0 and deleted.stdout.strip() == "", f"DEL #{attempt}\n" + deleted.describe()
        spec.after_del(ctx)


# ---------------------------------------------------------------- STATUS, GC

@pytest.mark.parametrize("plugin_path", sorted(SPECS), indirect=True)
@pytest.mark.parametrize("verb", ["STATUS", "GC"])
@pytest.mark.parametrize("version", ALL_VERSIONS)
def test_status_and_gc(plugin_path, verb, version, run_plugin, ctx_without_netns):
    """Only CNI_COMMAND and CNI_PATH carry values, as libcni sends them."""
    config = SPECS[plugin_path.name].config(ctx_without_netns, version)
    config.pop("prevResult", None)
    out = run_plugin(plugin_path, verb, config, netns="", container_id="", ifname="")
    if allowed(plugin_path.name, verb, version):
        assert out.rc == 0 and out.stdout.strip() == "", out.describe()
    else:
        assert out.rc != 0 and one_json_object(out)["code"] == 1, out.describe()
        assert out.json["msg"]


# ---------------------------------------------------------------- no command

@pytest.mark.parametrize("plugin_path", sorted(SPECS), indirect=True)
def test_no_command_describes_the_plugin(plugin_path, run_plugin):
    out = run_plugin(plugin_path, None, b"", netns=None, container_id=None, ifname=None, cni_args=None,
                     extra_env={"CNI_PATH": None})
    assert out.rc == 0, out.describe()
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and plugin_path.name in lines[0], out.stderr


# ---------------------------------------------------------------- libcni

@pytest.mark.parametrize("plugin_path", sorted(SPECS), indirect=True)
def test_libcni_accepts_our_version_answer(plugin_path, cnitool):
    out = cnitool.version(plugin_path.name, cni_path=plugin_path.parent).check()
    assert out.json["supportedVersions"] == list(SPECS[plugin_path.name].versions)
