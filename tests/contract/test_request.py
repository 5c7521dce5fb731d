"""The request side of the contract, without root: environment, stdin, version rules, dispatch.

A fake plugin module stands in for a real one, so these tests see exactly what the contract
hands a plugin and what it prints for it.
"""

from __future__ import annotations

import io
import json
import os
import sys
import types

import pytest

from cni.contract import dispatch, request, versions
from cni.contract.errors import (
    DECODING_FAILURE,
    INCOMPATIBLE_VERSION,
    INTERNAL,
    INVALID_CONFIG,
    INVALID_ENVIRONMENT,
    INVALID_NETNS,
    UNKNOWN_CONTAINER,
    UNSUPPORTED_FIELD,
    CNIError,
)
from cni.contract.request import (
    REQUIRED_ENV,
    check_container_id,
    check_ifname,
    parse_env,
    parse_stdin,
)
from cni.contract.result import Interface, IPConfig, Result

ALL = versions.SUPPORTED
FULL_ENV = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c0ffee", "CNI_NETNS": "/var/run/netns/x",
            "CNI_IFNAME": "eth0", "CNI_PATH": "/opt/cni/bin", "CNI_ARGS": ""}


def env_for(command: str, **changes: str | None) -> dict[str, str]:
    env = dict(FULL_ENV, CNI_COMMAND=command)
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


# ---------------------------------------------------------------- environment

@pytest.mark.parametrize("command", ["ADD", "DEL", "CHECK", "STATUS", "GC", "VERSION"])
def test_full_environment_is_accepted(command):
    req = parse_env(env_for(command))
    assert req.command == command
    assert req.path == ["/opt/cni/bin"]


def test_environment_fields_reach_the_request():
    req = parse_env(env_for("ADD", CNI_PATH="/a::/b"))
    assert (req.container_id, req.netns, req.ifname, req.path) == ("c0ffee", "/var/run/netns/x", "eth0",
                                                                    ["/a", "/b"])


def test_cni_path_keeps_its_absolute_directories_only():
    """A relative element would search the working directory: skipped, the others still serve."""
    req = parse_env(env_for("ADD", CNI_PATH=".:bin::/opt/cni/bin:./x:../y:/usr/lib/cni:"))
    assert req.path == ["/opt/cni/bin", "/usr/lib/cni"]
    assert parse_env(env_for("ADD", CNI_PATH=".")).path == []


@pytest.mark.parametrize("command", ["ADD", "DEL", "CHECK", "STATUS", "GC"])
def test_every_missing_variable_is_named_in_one_code_4_error(command):
    env = {"CNI_COMMAND": command}
    with pytest.raises(CNIError) as exc:
        parse_env(env)
    assert exc.value.code == INVALID_ENVIRONMENT
    for var in REQUIRED_ENV[command]:
        assert var in exc.value.msg
    assert len(REQUIRED_ENV[command]) >= 1


def test_required_variables_per_verb():
    """The spec's table, with CNI_PATH required as Go's skel requires it; DEL may lack a netns."""
    assert set(REQUIRED_ENV["ADD"]) == {"CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"}
    assert set(REQUIRED_ENV["CHECK"]) == {"CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"}
    assert set(REQUIRED_ENV["DEL"]) == {"CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"}
    assert set(REQUIRED_ENV["STATUS"]) == {"CNI_PATH"}
    assert set(REQUIRED_ENV["GC"]) == {"CNI_PATH"}
    assert set(REQUIRED_ENV["VERSION"]) == set()


@pytest.mark.parametrize("var", ["CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"])
def test_an_empty_variable_counts_as_missing(var):
    with pytest.raises(CNIError) as exc:
        parse_env(env_for("ADD", **{var: ""}))
    assert exc.value.code == INVALID_ENVIRONMENT
    assert var in exc.value.msg
    others = {"CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"} - {var}
    assert not any(o in exc.value.msg for o in others)


def test_del_without_netns_is_fine():
    assert parse_env(env_for("DEL", CNI_NETNS="")).netns == ""


@pytest.mark.parametrize("command", ["STATUS", "GC", "VERSION"])
def test_status_gc_version_ignore_container_variables(command):
    """libcni exports them empty for these verbs; a bad value is not even looked at."""
    req = parse_env(env_for(command, CNI_CONTAINERID="", CNI_NETNS="", CNI_IFNAME="../x"))
    assert req.command == command


@pytest.mark.parametrize("command", ["add", "Add", "FOO", "GET", " ADD", "ADD\n"])
def test_unknown_command_is_code_4_naming_it(command):
    with pytest.raises(CNIError) as exc:
        parse_env(env_for(command))
    assert exc.value.code == INVALID_ENVIRONMENT
    assert command in exc.value.msg
    assert "CNI_COMMAND" in exc.value.msg


def test_bad_container_id_and_missing_path_are_named_together():
    with pytest.raises(CNIError) as exc:
        parse_env(env_for("ADD", CNI_CONTAINERID="-bad", CNI_PATH=""))
    assert exc.value.code == INVALID_ENVIRONMENT
    assert "CNI_CONTAINERID" in exc.value.msg
    assert "CNI_PATH" in exc.value.msg
    assert "-bad" in exc.value.details


GOOD_IDS = ["a", "0", "c0ffee", "abc-DEF_1.2", "a" * 64, "0123456789abcdef" * 8, "a..b", "a-"]
BAD_IDS = ["-a", "_a", ".a", "a/b", "a b", "a:b", "abc\n", "\nabc", "é", "a\tb", "a;b", "a*b", "a=b"]


@pytest.mark.parametrize("value", GOOD_IDS)
def test_good_container_ids(value):
    assert check_container_id(value) is None
    assert parse_env(env_for("ADD", CNI_CONTAINERID=value)).container_id == value


@pytest.mark.parametrize("value", BAD_IDS)
def test_bad_container_ids_are_code_4(value):
    assert check_container_id(value) is not None
    with pytest.raises(CNIError) as exc:
        parse_env(env_for("DEL", CNI_CONTAINERID=value))
    assert exc.value.code == INVALID_ENVIRONMENT
    assert "CNI_CONTAINERID" in exc.value.msg


GOOD_IFNAMES = ["eth0", "e", "a" * 15, "net1.100", "-", "é" * 7, "...", "a.", "eth0@x"]
BAD_IFNAMES = ["a" * 16, ".", "..", "a/b", "/", "a:b", ":", "a b", " ", "a\tb", "a\nb", "é" * 8,
               "eth0\u00a0"]


@pytest.mark.parametrize("value", GOOD_IFNAMES)
def test_good_interface_names(value):
    assert check_ifname(value) is None
    assert parse_env(env_for("CHECK", CNI_IFNAME=value)).ifname == value


@pytest.mark.parametrize("value", BAD_IFNAMES)
def test_bad_interface_names_are_code_4(value):
    assert check_ifname(value) is not None
    with pytest.raises(CNIError) as exc:
        parse_env(env_for("ADD", CNI_IFNAME=value))
    assert exc.value.code == INVALID_ENVIRONMENT
    assert "CNI_IFNAME" in exc.value.msg


def test_interface_name_length_counts_bytes():
    """IFNAMSIZ is 16 bytes with the NUL; 8 two-byte characters are 16 bytes."""
    assert check_ifname("é" * 7 + "a") is None
    assert check_ifname("é" * 7 + "ab") is not None


# ---------------------------------------------------------------- stdin and versions

def parsed(stdin: bytes | str) -> tuple[dict, str]:
    req = parse_env(env_for("ADD"))
    config = parse_stdin(req, stdin.encode() if isinstance(stdin, str) else stdin)
    return config, req.version


@pytest.mark.parametrize("stdin", [b"", b"{", b"not json", b"\xff\xfe", b"{'a': 1}", b"{} {}"])
def test_stdin_that_is_not_json_is_code_6(stdin):
    with pytest.raises(CNIError) as exc:
        parsed(stdin)
    assert exc.value.code == DECODING_FAILURE
    assert "JSON" in exc.value.msg


@pytest.mark.parametrize("stdin", ['{"name": "n", "x": NaN}', '{"name": "n", "mtu": Infinity}',
                                   '{"name": "n", "x": [-Infinity]}', '{"name": "n", "x": 1e999}'])
def test_numbers_go_refuses_are_code_6(stdin):
    with pytest.raises(CNIError) as exc:
        parsed(stdin)
    assert exc.value.code == DECODING_FAILURE


@pytest.mark.parametrize(("stdin", "where"), [('{"name": "n", "bridge": "b\\ud800"}', "bridge"),
                                              ('{"ipam": {"dataDir": "/x/\\udfff"}}', "ipam.dataDir"),
                                              ('{"x": [1, {"k\\ud800": 1}]}', "x[1]")])
def test_a_lone_surrogate_is_code_7_naming_where(stdin, where):
    with pytest.raises(CNIError) as exc:
        parsed(stdin)
    assert exc.value.code == INVALID_CONFIG and f"at {where} " in exc.value.msg


def test_stdin_past_the_bound_is_code_6_and_a_pair_of_surrogates_is_text():
    with pytest.raises(CNIError) as exc:
        parsed(b'{"x": "' + b"a" * request.MAX_STDIN + b'"}')
    assert exc.value.code == DECODING_FAILURE and "too large" in exc.value.msg
    assert parsed('{"name": "n", "x": "\\ud83d\\ude00"}')[0]["x"] == "\U0001f600"


@pytest.mark.parametrize("stdin", ["[]", "1", '"x"', "null", "true", '[{"name": "n"}]'])
def test_json_that_is_not_an_object_is_code_6(stdin):
    with pytest.raises(CNIError) as exc:
        parsed(stdin)
    assert exc.value.code == DECODING_FAILURE
    assert "object" in exc.value.msg


@pytest.mark.parametrize("raw", ['{"name":"n"}', '{"name":"n","cniVersion":""}',
                                 '{"name":"n","cniVersion":null}'])
def test_absent_cni_version_is_010(raw):
    assert parsed(raw)[1] == "0.1.0"


@pytest.mark.parametrize("value", ["1", "1.0", "true", "[]", "{}", "1.0e0"])
def test_non_string_cni_version_is_a_decoding_failure(value):
    """Go's decoder fails to put a non-string into the version field: code 6, naming the value."""
    with pytest.raises(CNIError) as exc:
        parsed('{"name":"n","cniVersion":' + value + "}")
    assert exc.value.code == DECODING_FAILURE
    assert "cniVersion" in exc.value.msg


@pytest.mark.parametrize("version", ["9.9.9", "0.5.0", "1.2.0", "0.0.1", "1.0", "v1.0.0", "latest"])
def test_unsupported_versions_are_code_1_with_the_list(version):
    with pytest.raises(CNIError) as exc:
        versions.require_supported(version)
    assert exc.value.code == INCOMPATIBLE_VERSION
    assert exc.value.msg == "incompatible CNI versions"
    assert f'config is "{version}"' in exc.value.details
    assert '["0.1.0" "0.2.0" "0.3.0" "0.3.1" "0.4.0" "1.0.0" "1.1.0"]' in exc.value.details


def test_a_plugin_with_fewer_versions_lists_its_own():
    with pytest.raises(CNIError) as exc:
        versions.require_supported("0.2.0", ("0.3.0", "0.3.1"))
    assert exc.value.details == 'config is "0.2.0", plugin supports ["0.3.0" "0.3.1"]'


VERB_ALLOWED = {
    (verb, v): versions.parse(v) >= versions.parse(minimum)
    for verb, minimum in {"ADD": "0.1.0", "DEL": "0.1.0", "CHECK": "0.4.0", "STATUS": "1.1.0",
                          "GC": "1.1.0"}.items()
    for v in ALL
}


@pytest.mark.parametrize(("verb", "version"), sorted(VERB_ALLOWED))
def test_verb_minimum_versions(verb, version):
    if VERB_ALLOWED[(verb, version)]:
        versions.require_verb(verb, version)
        return
    with pytest.raises(CNIError) as exc:
        versions.require_verb(verb, version)
    assert exc.value.code == INCOMPATIBLE_VERSION
    assert verb in exc.value.msg


def test_verb_minimums_are_the_specs():
    assert versions.VERB_MINIMUM == {"ADD": "0.1.0", "DEL": "0.1.0", "CHECK": "0.4.0", "STATUS": "1.1.0",
                                     "GC": "1.1.0"}


def test_version_ordering_is_numeric():
    assert versions.at_least("0.10.0", "0.4.0")
    assert not versions.at_least("0.3.1", "0.4.0")
    assert versions.at_least("1.1.0", "1.1.0")


# ---------------------------------------------------------------- dispatch with a fake plugin

class FakePlugin(types.ModuleType):
    """A plugin module recording what it is handed; `answer` is what add() returns."""

    def __init__(self, **attrs):
        super().__init__("fakeplugin")
        self.TYPE = "fake"
        self.SCHEMA = "loopback"
        self.CNI_ARGS_KEYS = frozenset({"IP"})
        self.VERSIONS = versions.SUPPORTED
        self.NEEDS_NETNS = False
        self.IPAM = False
        self.READS_PREV_RESULT = True
        self.prev_result_as_text = None
        self.calls: list = []
        self.answer: Result | None = Result(
            interfaces=[Interface(name="eth0", sandbox="/var/run/netns/x")],
            ips=[IPConfig(address=__import__("ipaddress").ip_interface("10.1.0.5/24"), interface=0)])
        for k, v in attrs.items():
            setattr(self, k, v)

    def add(self, req):
        self.calls.append(("ADD", req))
        return self.answer

    def delete(self, req):
        self.calls.append(("DEL", req))

    def check(self, req):
        self.calls.append(("CHECK", req))

    def status(self, req):
        self.calls.append(("STATUS", req))

    def gc(self, req):
        self.calls.append(("GC", req))


def conf(version: str | None = "1.0.0", **extra) -> bytes:
    config = {"name": "net1", "type": "fake", **extra}
    if version is not None:
        config["cniVersion"] = version
    return json.dumps(config).encode()


def serve(plugin, command: str, stdin: bytes, **env):
    req = parse_env(env_for(command, **env))
    return dispatch.serve(plugin, req, lambda: stdin)


def test_version_does_not_read_stdin():
    def explode() -> bytes:
        raise AssertionError("VERSION read stdin")
    out = dispatch.serve(FakePlugin(), parse_env({"CNI_COMMAND": "VERSION"}), explode)
    assert out == {"cniVersion": "1.1.0", "supportedVersions": list(ALL)}


def test_version_lists_the_plugins_own_versions():
    out = serve(FakePlugin(VERSIONS=("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")), "VERSION", b"")
    assert out["supportedVersions"] == ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"]


@pytest.mark.parametrize("version", ALL)
def test_add_prints_in_the_configs_version(version):
    out = serve(FakePlugin(), "ADD", conf(version))
    assert out["cniVersion"] == version
    assert ("ip4" in out) == (version in ("0.1.0", "0.2.0"))


def test_add_without_cni_version_answers_in_010():
    out = serve(FakePlugin(), "ADD", conf(None))
    assert out == {"cniVersion": "0.1.0", "ip4": {"ip": "10.1.0.5/24"}, "dns": {}}


@pytest.mark.parametrize("verb", ["DEL", "CHECK", "STATUS", "GC"])
def test_other_verbs_answer_nothing(verb):
    plugin = FakePlugin()
    assert serve(plugin, verb, conf("1.1.0")) is None
    assert [c[0] for c in plugin.calls] == [verb]


@pytest.mark.parametrize(("verb", "version"), sorted(k for k, ok in VERB_ALLOWED.items() if not ok))
def test_verbs_below_their_version_never_reach_the_plugin(verb, version):
    plugin = FakePlugin()
    with pytest.raises(CNIError) as exc:
        serve(plugin, verb, conf(version))
    assert exc.value.code == INCOMPATIBLE_VERSION
    assert plugin.calls == []


@pytest.mark.parametrize("verb", ["ADD", "DEL", "CHECK", "STATUS", "GC"])
@pytest.mark.parametrize("version", ["9.9.9", "0.5.0"])
def test_unsupported_version_never_reaches_the_plugin(verb, version):
    plugin = FakePlugin()
    with pytest.raises(CNIError) as exc:
        serve(plugin, verb, conf(version))
    assert exc.value.code == INCOMPATIBLE_VERSION
    assert version in exc.value.details
    assert plugin.calls == []


def test_plugin_restricted_to_030_refuses_020():
    plugin = FakePlugin(VERSIONS=("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"))
    with pytest.raises(CNIError) as exc:
        serve(plugin, "ADD", conf("0.2.0"))
    assert exc.value.code == INCOMPATIBLE_VERSION
    assert '"0.3.0"' in exc.value.details
    assert plugin.calls == []


@pytest.mark.parametrize(("name", "code"), [(None, INVALID_CONFIG), ("", INVALID_CONFIG),
                                            ("-net", INVALID_CONFIG), ("a b", INVALID_CONFIG),
                                            ("net\n", INVALID_CONFIG), ("n/1", INVALID_CONFIG),
                                            (1, INVALID_CONFIG)])
def test_missing_or_invalid_network_name(name, code):
    plugin = FakePlugin()
    config = {"cniVersion": "1.0.0", "type": "fake"}
    if name is not None:
        config["name"] = name
    with pytest.raises(CNIError) as exc:
        serve(plugin, "ADD", json.dumps(config).encode())
    assert exc.value.code == code
    assert "name" in exc.value.msg
    assert plugin.calls == []


def test_network_name_check_applies_to_every_verb():
    for verb in ("DEL", "CHECK", "STATUS", "GC"):
        with pytest.raises(CNIError) as exc:
            serve(FakePlugin(), verb, json.dumps({"cniVersion": "1.1.0", "type": "fake"}).encode())
        assert exc.value.code == INVALID_CONFIG


def test_schema_type_violation_is_code_7_naming_the_key_and_value():
    with pytest.raises(CNIError) as exc:
        serve(FakePlugin(), "ADD", conf("1.0.0", args=["x"]))
    assert exc.value.code == INVALID_CONFIG
    assert "args" in exc.value.msg
    assert '["x"]' in exc.value.msg


def test_cni_args_reach_the_plugin_parsed():
    plugin = FakePlugin()
    serve(plugin, "ADD", conf(), CNI_ARGS="IgnoreUnknown=1;IP=10.1.0.9;K8S_POD_NAME=web")
    assert plugin.calls[0][1].args == {"IP": "10.1.0.9"}


@pytest.mark.parametrize("raw", ["IP", "FOO=bar", "IP=1;", "IgnoreUnknown=maybe;IP=1"])
def test_bad_cni_args_stop_the_call(raw):
    plugin = FakePlugin()
    with pytest.raises(CNIError) as exc:
        serve(plugin, "ADD", conf(), CNI_ARGS=raw)
    assert exc.value.code == INVALID_ENVIRONMENT
    assert "CNI_ARGS" in exc.value.msg
    assert plugin.calls == []


def test_plugin_without_cni_args_keys_ignores_cni_args():
    plugin = FakePlugin(CNI_ARGS_KEYS=None)
    serve(plugin, "ADD", conf(), CNI_ARGS="garbage")
    assert plugin.calls[0][1].args == {}


def test_prev_result_is_parsed_in_the_configs_version():
    plugin = FakePlugin()
    serve(plugin, "ADD", conf("0.2.0", prevResult={"ip4": {"ip": "10.1.0.7/24"}}))
    prev = plugin.calls[0][1].prev_result
    assert [str(a.address) for a in prev.ips] == ["10.1.0.7/24"]


def test_prev_result_with_its_own_version():
    plugin = FakePlugin()
    prev = {"cniVersion": "0.4.0", "ips": [{"version": "4", "address": "10.1.0.7/24"}]}
    serve(plugin, "ADD", conf("1.0.0", prevResult=prev))
    assert [str(a.address) for a in plugin.calls[0][1].prev_result.ips] == ["10.1.0.7/24"]


@pytest.mark.parametrize("prev", [
    {"cniVersion": "1.0.0", "ips": [{"address": "10.1.0.7"}]},
    {"cniVersion": "1.0.0", "ips": "10.1.0.7/24"},
    {"cniVersion": "abc", "ips": []},
])
def test_unparsable_prev_result_is_code_6(prev):
    plugin = FakePlugin()
    with pytest.raises(CNIError) as exc:
        serve(plugin, "ADD", conf("1.0.0", prevResult=prev))
    assert exc.value.code == DECODING_FAILURE
    assert "prevResult" in exc.value.msg
    assert plugin.calls == []


@pytest.mark.parametrize("prev", [
    {"cniVersion": "1.0.0", "ips": [{"address": "10.1.0.7"}]},
    {"cniVersion": "abc", "ips": []},
])
def test_del_goes_on_without_a_prev_result_that_does_not_parse(prev):
    """DEL is best effort: a result it cannot read must not keep it from releasing anything."""
    plugin = FakePlugin()
    assert serve(plugin, "DEL", conf("1.0.0", prevResult=prev)) is None
    assert [(c[0], c[1].prev_result) for c in plugin.calls] == [("DEL", None)]


def test_null_values_count_as_absent():
    """Go's decoder leaves a field at its zero value for null; a required one is then missing."""
    plugin = FakePlugin()
    serve(plugin, "ADD", conf("1.0.0", args=None, runtimeConfig=None, prevResult=None))
    config = plugin.calls[0][1].config
    assert "args" not in config and "runtimeConfig" not in config and plugin.calls[0][1].prev_result is None
    with pytest.raises(CNIError) as exc:
        serve(FakePlugin(), "ADD", conf("1.0.0", name=None))
    assert exc.value.code == INVALID_CONFIG and "name" in exc.value.msg


def test_prev_result_of_the_wrong_json_type_is_refused():
    plugin = FakePlugin()
    with pytest.raises(CNIError) as exc:
        serve(plugin, "ADD", conf("1.0.0", prevResult=["x"]))
    assert exc.value.code in (INVALID_CONFIG, DECODING_FAILURE)
    assert "prevResult" in exc.value.msg
    assert plugin.calls == []


def test_the_plugin_sees_keys_in_the_schemas_spelling():
    plugin = FakePlugin()
    serve(plugin, "ADD", conf("1.0.0", RuntimeConfig={"x": 1}, Unknown=2))
    config = plugin.calls[0][1].config
    assert config["runtimeConfig"] == {"x": 1}
    assert config["Unknown"] == 2


def test_plugin_cni_errors_pass_through_unchanged():
    plugin = FakePlugin()
    plugin.add = lambda req: (_ for _ in ()).throw(CNIError(UNSUPPORTED_FIELD, "no", "because"))
    with pytest.raises(CNIError) as exc:
        serve(plugin, "ADD", conf())
    assert (exc.value.code, exc.value.msg, exc.value.details) == (UNSUPPORTED_FIELD, "no", "because")


# ---------------------------------------------------------------- the netns checks

def test_missing_netns_is_code_3_for_plugins_that_need_one(tmp_path):
    plugin = FakePlugin(NEEDS_NETNS=True)
    with pytest.raises(CNIError) as exc:
        serve(plugin, "ADD", conf(), CNI_NETNS=str(tmp_path / "gone"))
    assert exc.value.code == UNKNOWN_CONTAINER
    assert "gone" in exc.value.msg
    assert plugin.calls == []


def test_a_file_that_is_no_namespace_is_code_3(tmp_path):
    plugin = FakePlugin(NEEDS_NETNS=True)
    regular = tmp_path / "netns"
    regular.write_text("")
    with pytest.raises(CNIError) as exc:
        serve(plugin, "CHECK", conf(), CNI_NETNS=str(regular))
    assert exc.value.code == UNKNOWN_CONTAINER
    assert "not a network namespace" in exc.value.msg
    assert plugin.calls == []


def test_own_netns_is_code_8_for_plugins_that_need_one():
    plugin = FakePlugin(NEEDS_NETNS=True)
    with pytest.raises(CNIError) as exc:
        serve(plugin, "ADD", conf(), CNI_NETNS="/proc/self/ns/net")
    assert exc.value.code == INVALID_NETNS
    assert plugin.calls == []


@pytest.mark.parametrize("override", ["1", "true", "TRUE", "True"])
def test_netns_override_skips_the_own_netns_check(override):
    """skel's CNI_NETNS_OVERRIDE: "1" or "true" in any case."""
    plugin = FakePlugin(NEEDS_NETNS=True)
    serve(plugin, "ADD", conf(), CNI_NETNS="/proc/self/ns/net", CNI_NETNS_OVERRIDE=override)
    assert [c[0] for c in plugin.calls] == ["ADD"]


def test_del_of_the_own_netns_is_refused_before_the_plugin_runs():
    """A DEL aimed at the plugin's own netns would tear down the host's devices."""
    plugin = FakePlugin(NEEDS_NETNS=True)
    with pytest.raises(CNIError) as exc:
        serve(plugin, "DEL", conf(), CNI_NETNS="/proc/self/ns/net")
    assert exc.value.code == INVALID_NETNS
    assert plugin.calls == []


def test_del_of_a_missing_netns_still_runs(tmp_path):
    plugin = FakePlugin(NEEDS_NETNS=True)
    serve(plugin, "DEL", conf(), CNI_NETNS=str(tmp_path / "gone"))
    assert [c[0] for c in plugin.calls] == ["DEL"]


# ---------------------------------------------------------------- main: the process edge

def run_main(plugin, env: dict[str, str], stdin: bytes, capsys, monkeypatch) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    rc = dispatch.main("fake", lambda _t: plugin, env)
    out, err = capsys.readouterr()
    return rc, out, err


def test_main_without_command_describes_itself_on_stderr(capsys, monkeypatch):
    rc, out, err = run_main(FakePlugin(VERSIONS=("0.4.0", "1.0.0")), {}, b"", capsys, monkeypatch)
    assert rc == 0
    assert out == ""
    assert "fake" in err and err.count("\n") == 1
    assert err.rstrip().endswith("spec versions 0.4.0, 1.0.0")  # the plugin's own list


def test_main_prints_one_json_object_on_success(capsys, monkeypatch):
    rc, out, _ = run_main(FakePlugin(), env_for("ADD"), conf("1.0.0"), capsys, monkeypatch)
    assert rc == 0
    assert out.count("\n") == 1
    assert json.loads(out)["cniVersion"] == "1.0.0"


def test_main_prints_errors_as_json_on_stdout(capsys, monkeypatch):
    rc, out, _ = run_main(FakePlugin(), env_for("ADD"), b"nope", capsys, monkeypatch)
    assert rc == 1
    assert json.loads(out)["code"] == DECODING_FAILURE


def test_main_error_speaks_the_configs_version(capsys, monkeypatch):
    rc, out, _ = run_main(FakePlugin(), env_for("ADD", CNI_ARGS="bad"), conf("0.3.1"), capsys, monkeypatch)
    assert rc == 1
    assert json.loads(out)["cniVersion"] == "0.3.1"


def test_main_turns_a_crash_into_code_999_with_the_traceback_on_stderr(capsys, monkeypatch):
    plugin = FakePlugin()

    def crash(req):
        raise RuntimeError("kaboom")
    plugin.add = crash
    rc, out, err = run_main(plugin, env_for("ADD"), conf(), capsys, monkeypatch)
    assert rc == 1
    answer = json.loads(out)
    assert answer["code"] == INTERNAL
    assert "kaboom" in answer["msg"]
    assert "Traceback" in err
    assert "Traceback" not in out


def test_main_keeps_stray_prints_off_stdout(capsys, monkeypatch):
    plugin = FakePlugin()
    real_add = plugin.add

    def noisy(req):
        print("debugging output")
        return real_add(req)
    plugin.add = noisy
    rc, out, err = run_main(plugin, env_for("ADD"), conf(), capsys, monkeypatch)
    assert rc == 0
    assert "debugging output" in err
    assert json.loads(out)["cniVersion"] == "1.0.0"
    assert sys.stdout is not sys.stderr


def test_main_reads_the_process_environment_by_default(capsys, monkeypatch):
    for key in list(os.environ):
        if key.startswith("CNI_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CNI_COMMAND", "VERSION")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    assert dispatch.main("fake", lambda _t: FakePlugin()) == 0
    assert json.loads(capsys.readouterr().out)["supportedVersions"] == list(ALL)


@pytest.mark.parametrize(("verb", "version", "code", "msg"), [
    ("CHECK", "x", 6, 'failed to convert major version part "x": strconv.Atoi: parsing "x": invalid syntax'),
    ("STATUS", "1.x.0", 6, 'failed to convert minor version part "x": strconv.Atoi: parsing "x": '
     "invalid syntax"),
    ("GC", "1.1.0.0", 6, "invalid version '1.1.0.0': too many parts"),
    ("CHECK", "0.3.1", 1, "config version does not allow CHECK"),
    ("STATUS", "0.5.0", 1, "config version does not allow STATUS"),   # below 1.1.0 before unsupported
    ("GC", "1.2.0", 1, "plugin version does not allow GC"),            # above every version we speak
])
def test_verbs_gated_by_version_in_skels_order(verb, version, code, msg):
    """skel (libcni 1.3.0, the reference v1.9.1's) parses the version first for CHECK, STATUS and GC."""
    with pytest.raises(CNIError) as exc:
        versions.require_verb(verb, version)
    assert (exc.value.code, exc.value.msg) == (code, msg)


@pytest.mark.parametrize(("verb", "version"), [("ADD", "x"), ("DEL", "1.2.0"), ("CHECK", "1.1"),
                                               ("GC", "+1.1.0"), ("STATUS", "1.1.0")])
def test_what_the_verb_gate_lets_through_to_the_supported_list(verb, version):
    versions.require_verb(verb, version)  # ADD and DEL: require_supported alone decides
