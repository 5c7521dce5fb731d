"""Results in every spec version: what each version prints, and reading any version back.

The expected JSON is written out by hand per version family, so a change in the printer that
the spec does not allow shows up as a difference against a literal, not against the code itself.
"""

from __future__ import annotations

import copy
import ipaddress
import itertools
import json

import pytest

from cni.contract import versions
from cni.contract.errors import DECODING_FAILURE, INCOMPATIBLE_VERSION, CNIError
from cni.contract.result import DNS, Interface, IPConfig, Result, Route

ALL = versions.SUPPORTED
LEGACY_02 = ("0.1.0", "0.2.0")
WITH_IP_VERSION = ("0.3.0", "0.3.1", "0.4.0")
V1 = ("1.0.0", "1.1.0")


def test_supported_versions_are_the_seven_spec_versions():
    assert ALL == ("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


def rich() -> Result:
    """One v4 and one v6 address, routes of both families with 1.1.0 extras, DNS, two interfaces."""
    return Result(
        interfaces=[
            Interface(name="cbr0", mac="0a:58:0a:01:00:01"),
            Interface(name="eth0", mac="0a:58:0a:01:00:05", sandbox="/var/run/netns/pod", mtu=1400,
                      socket_path="/run/vhost.sock", pci_id="0000:00:1f.6"),
        ],
        ips=[
            IPConfig(ipaddress.ip_interface("10.1.0.5/24"), ip("10.1.0.1"), 1),
            IPConfig(ipaddress.ip_interface("2001:db8::5/64"), ip("2001:db8::1"), 1),
        ],
        routes=[
            Route(ipaddress.ip_network("0.0.0.0/0"), ip("10.1.0.1"), mtu=1400, advmss=1360, priority=10,
                  table=100, scope=0),
            Route(ipaddress.ip_network("192.168.0.0/16")),
            Route(ipaddress.ip_network("::/0"), ip("2001:db8::1"), scope=253),
        ],
        dns=DNS(nameservers=["10.96.0.10"], domain="cluster.local", search=["svc.cluster.local"],
                options=["ndots:5"]),
    )


DNS_JSON = {"nameservers": ["10.96.0.10"], "domain": "cluster.local", "search": ["svc.cluster.local"],
            "options": ["ndots:5"]}


def expected(version: str) -> dict:
    """rich() as each spec version must print it."""
    if version in LEGACY_02:
        return {
            "cniVersion": version,
            "ip4": {"ip": "10.1.0.5/24", "gateway": "10.1.0.1",
                    "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}, {"dst": "192.168.0.0/16"}]},
            "ip6": {"ip": "2001:db8::5/64", "gateway": "2001:db8::1",
                    "routes": [{"dst": "::/0", "gw": "2001:db8::1"}]},
            "dns": DNS_JSON,
        }
    ips = [{"interface": 1, "address": "10.1.0.5/24", "gateway": "10.1.0.1"},
           {"interface": 1, "address": "2001:db8::5/64", "gateway": "2001:db8::1"}]
    interfaces = [{"name": "cbr0", "mac": "0a:58:0a:01:00:01"},
                  {"name": "eth0", "mac": "0a:58:0a:01:00:05", "sandbox": "/var/run/netns/pod"}]
    routes = [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}, {"dst": "192.168.0.0/16"},
              {"dst": "::/0", "gw": "2001:db8::1"}]
    if version in WITH_IP_VERSION:
        ips[0]["version"] = "4"
        ips[1]["version"] = "6"
    if version == "1.1.0":
        interfaces[1].update(mtu=1400, socketPath="/run/vhost.sock", pciID="0000:00:1f.6")
        routes[0].update(mtu=1400, advmss=1360, priority=10, table=100, scope=0)
        routes[2].update(scope=253)
    return {"cniVersion": version, "interfaces": interfaces, "ips": ips, "routes": routes, "dns": DNS_JSON}


# ---------------------------------------------------------------- printing

@pytest.mark.parametrize("version", ALL)
def test_prints_each_version_exactly(version):
    assert rich().to_json(version) == expected(version)


@pytest.mark.parametrize("version", ALL)
def test_printed_result_is_json_serialisable(version):
    text = json.dumps(rich().to_json(version))
    assert json.loads(text)["cniVersion"] == version


@pytest.mark.parametrize("version", LEGACY_02)
@pytest.mark.parametrize("second", ["10.1.0.6/24", "2001:db8::6/64"])
def test_02x_keeps_the_first_address_of_each_family(version, second):
    """As libcni converts down: a second address of a family is dropped, the first one printed."""
    result = rich()
    first = {ip.version: str(ip.address) for ip in reversed(result.ips)}
    result.ips.append(IPConfig(ipaddress.ip_interface(second)))
    out = result.to_json(version)
    assert out["ip4"]["ip"] == first[4]
    assert out["ip6"]["ip"] == first[6]
    assert second not in json.dumps(out)


@pytest.mark.parametrize("version", LEGACY_02)
def test_02x_refuses_a_result_without_addresses(version):
    result = Result(interfaces=[Interface(name="lo")])
    with pytest.raises(CNIError) as exc:
        result.to_json(version)
    assert exc.value.code == INCOMPATIBLE_VERSION
    assert "no IP addresses" in exc.value.msg


@pytest.mark.parametrize("version", LEGACY_02)
def test_02x_v6_only_files_only_v6_routes(version):
    result = rich()
    result.ips = result.ips[1:]
    out = result.to_json(version)
    assert "ip4" not in out
    assert out["ip6"] == {"ip": "2001:db8::5/64", "gateway": "2001:db8::1",
                          "routes": [{"dst": "::/0", "gw": "2001:db8::1"}]}


@pytest.mark.parametrize("version", LEGACY_02)
def test_02x_address_without_gateway_or_routes(version):
    out = Result(ips=[IPConfig(ipaddress.ip_interface("10.1.0.5/24"))]).to_json(version)
    assert out == {"cniVersion": version, "ip4": {"ip": "10.1.0.5/24"}, "dns": {}}


@pytest.mark.parametrize("version", WITH_IP_VERSION)
def test_04x_prints_empty_dns_object(version):
    out = Result(ips=[IPConfig(ipaddress.ip_interface("10.1.0.5/24"))]).to_json(version)
    assert out == {"cniVersion": version, "ips": [{"version": "4", "address": "10.1.0.5/24"}], "dns": {}}


@pytest.mark.parametrize("version", WITH_IP_VERSION + V1)
def test_empty_result_prints_without_error_from_030(version):
    out = Result().to_json(version)
    assert out == ({"cniVersion": version, "dns": {}} if version in WITH_IP_VERSION
                   else {"cniVersion": version})


@pytest.mark.parametrize("version", V1)
def test_1x_omits_empty_dns_and_ip_version(version):
    out = Result(ips=[IPConfig(ipaddress.ip_interface("2001:db8::5/64"), interface=0)],
                 interfaces=[Interface(name="eth0")]).to_json(version)
    assert out == {"cniVersion": version, "interfaces": [{"name": "eth0"}],
                   "ips": [{"interface": 0, "address": "2001:db8::5/64"}]}


@pytest.mark.parametrize("version", V1)
def test_1x_prints_partial_dns(version):
    out = Result(dns=DNS(search=["example.com"])).to_json(version)
    assert out == {"cniVersion": version, "dns": {"search": ["example.com"]}}


@pytest.mark.parametrize("version", [v for v in ALL if v != "1.1.0"])
def test_11_only_fields_appear_in_no_other_version(version):
    text = json.dumps(rich().to_json(version))
    for key in ("mtu", "socketPath", "pciID", "advmss", "priority", "table", "scope"):
        assert f'"{key}"' not in text, key


def test_11_route_scope_and_table_zero_are_printed():
    """0 is a real value for scope (global) and table; only an unset field is left out."""
    out = Result(routes=[Route(ipaddress.ip_network("10.0.0.0/8"), table=0, scope=0)]).to_json("1.1.0")
    assert out["routes"] == [{"dst": "10.0.0.0/8", "table": 0, "scope": 0}]


@pytest.mark.parametrize("version", ["", "1.0", "a.b.c", "1.0.0.0"])
def test_printing_in_a_malformed_version_is_code_1(version):
    with pytest.raises(CNIError) as exc:
        rich().to_json(version)
    assert exc.value.code == INCOMPATIBLE_VERSION


# ---------------------------------------------------------------- parsing and conversion

LEVEL = {v: (0 if v in LEGACY_02 else 2 if v == "1.1.0" else 1) for v in ALL}


def projected(level: int) -> Result:
    """rich() after passing through a version of the given level: 0 = 0.1/0.2, 1 = 0.3..1.0, 2 = 1.1."""
    result = rich()
    if level >= 2:
        return result
    for i in result.interfaces:
        i.mtu, i.socket_path, i.pci_id = None, "", ""
    for r in result.routes:
        r.mtu = r.advmss = r.priority = r.table = r.scope = None
    if level == 0:
        result.interfaces = []
        for a in result.ips:
            a.interface = None
    return result


@pytest.mark.parametrize(("src", "dst"), list(itertools.product(ALL, ALL)))
def test_convert_between_every_pair_of_versions(src, dst):
    """Print in src, read back, print in dst: what src can hold survives, the rest is dropped."""
    printed = json.loads(json.dumps(rich().to_json(src)))
    back = Result.from_json(printed, "1.1.0")
    assert back.to_json(dst) == projected(min(LEVEL[src], LEVEL[dst])).to_json(dst)


@pytest.mark.parametrize("version", ALL)
def test_read_back_is_lossless_in_the_same_version(version):
    printed = rich().to_json(version)
    assert Result.from_json(copy.deepcopy(printed), version).to_json(version) == printed


@pytest.mark.parametrize("config_version", LEGACY_02)
def test_prev_result_without_cni_version_takes_the_configs_020(config_version):
    raw = {"ip4": {"ip": "10.1.0.5/24", "gateway": "10.1.0.1", "routes": [{"dst": "0.0.0.0/0"}]},
           "dns": {}}
    result = Result.from_json(raw, config_version)
    assert [str(a.address) for a in result.ips] == ["10.1.0.5/24"]
    assert [str(r.dst) for r in result.routes] == ["0.0.0.0/0"]


@pytest.mark.parametrize("config_version", WITH_IP_VERSION + V1)
def test_prev_result_without_cni_version_takes_the_configs_newer(config_version):
    raw = {"interfaces": [{"name": "eth0", "sandbox": "/x"}],
           "ips": [{"version": "4", "interface": 0, "address": "10.1.0.5/24", "gateway": "10.1.0.1"}]}
    result = Result.from_json(raw, config_version)
    assert [str(a.address) for a in result.ips] == ["10.1.0.5/24"]
    assert result.ips[0].interface == 0
    assert result.interfaces[0].sandbox == "/x"


def test_a_020_shape_read_as_10_has_no_addresses():
    """Without its own cniVersion, a result is read in the config's version: ip4 means nothing in 1.0."""
    raw = {"ip4": {"ip": "10.1.0.5/24"}}
    assert Result.from_json(raw, "1.0.0").ips == []
    assert len(Result.from_json(raw, "0.2.0").ips) == 1


def test_declared_cni_version_wins_over_the_configs():
    raw = {"cniVersion": "0.2.0", "ip4": {"ip": "10.1.0.5/24"}}
    assert [str(a.address) for a in Result.from_json(raw, "1.0.0").ips] == ["10.1.0.5/24"]


def test_empty_declared_cni_version_takes_the_configs():
    raw = {"cniVersion": "", "ip4": {"ip": "10.1.0.5/24"}}
    assert len(Result.from_json(raw, "0.1.0").ips) == 1


def test_ips_version_field_is_ignored_and_recomputed():
    """The family comes from the address, whatever `version` claims."""
    raw = {"cniVersion": "0.4.0", "ips": [{"version": "6", "address": "10.1.0.5/24"}]}
    out = Result.from_json(raw, "0.4.0").to_json("0.4.0")
    assert out["ips"] == [{"version": "4", "address": "10.1.0.5/24"}]


def test_unknown_result_keys_are_ignored():
    raw = {"cniVersion": "1.0.0", "ips": [{"address": "10.1.0.5/24", "future": 1}], "whatever": [1]}
    assert len(Result.from_json(raw, "1.0.0").ips) == 1


BAD_RESULTS = [
    ("not an object", "not a JSON object", ["x"]),
    ("ips not a list", "ips", {"cniVersion": "1.0.0", "ips": {"address": "10.1.0.5/24"}}),
    ("address without prefix", "address", {"cniVersion": "1.0.0", "ips": [{"address": "10.1.0.5"}]}),
    ("address not an IP", "address", {"cniVersion": "1.0.0", "ips": [{"address": "ten/24"}]}),
    ("address missing", "address", {"cniVersion": "1.0.0", "ips": [{"gateway": "10.1.0.1"}]}),
    ("gateway not an IP", "gateway", {"cniVersion": "1.0.0",
                                      "ips": [{"address": "10.1.0.5/24", "gateway": "x"}]}),
    ("interface index a string", "interface", {"cniVersion": "1.0.0", "ips": [{"address": "10.1.0.5/24",
                                                                   "interface": "0"}]}),
    ("interface index a boolean", "interface", {"cniVersion": "1.0.0", "ips": [{"address": "10.1.0.5/24",
                                                                    "interface": True}]}),
    ("interface not an object", "interfaces[0]", {"cniVersion": "1.0.0", "interfaces": ["eth0"]}),
    ("interface name not a string", "name", {"cniVersion": "1.0.0", "interfaces": [{"name": 1}]}),
    ("interface mtu a string", "mtu", {"cniVersion": "1.1.0", "interfaces": [{"name": "e", "mtu": "1500"}]}),
    ("route without dst", "dst", {"cniVersion": "1.0.0", "routes": [{"gw": "10.1.0.1"}]}),
    ("route dst not a network", "dst", {"cniVersion": "1.0.0", "routes": [{"dst": "default"}]}),
    ("route table a string", "table", {"cniVersion": "1.1.0",
                                       "routes": [{"dst": "0.0.0.0/0", "table": "main"}]}),
    ("dns not an object", "dns", {"cniVersion": "1.0.0", "dns": ["10.96.0.10"]}),
    ("dns nameservers a string", "nameservers", {"cniVersion": "1.0.0",
                                                 "dns": {"nameservers": "10.96.0.10"}}),
    ("ip4 not an object", "ip4", {"cniVersion": "0.2.0", "ip4": "10.1.0.5/24"}),
    ("ip4 without ip", "ip4.ip", {"cniVersion": "0.2.0", "ip4": {"gateway": "10.1.0.1"}}),
    ("ip4 routes not a list", "routes", {"cniVersion": "0.2.0", "ip4": {"ip": "10.1.0.5/24", "routes": {}}}),
    ("cniVersion a number", "cniVersion", {"cniVersion": 1, "ips": []}),
]


@pytest.mark.parametrize(("why", "needle", "raw"), BAD_RESULTS, ids=[b[0] for b in BAD_RESULTS])
def test_malformed_results_are_decoding_failures(why, needle, raw):
    """Code 6, and the message names the part that is wrong."""
    with pytest.raises(CNIError) as exc:
        Result.from_json(raw, "1.0.0")
    assert exc.value.code == DECODING_FAILURE, why
    assert needle in exc.value.msg, exc.value.msg


def test_malformed_declared_version_is_refused():
    with pytest.raises(CNIError) as exc:
        Result.from_json({"cniVersion": "one", "ips": []}, "1.0.0")
    assert exc.value.code in (INCOMPATIBLE_VERSION, DECODING_FAILURE)
    assert "one" in str(exc.value)


def test_network_route_with_host_bits_is_kept_as_a_network():
    raw = {"cniVersion": "1.0.0", "routes": [{"dst": "10.1.2.3/8"}]}
    assert Result.from_json(raw, "1.0.0").to_json("1.0.0")["routes"] == [{"dst": "10.0.0.0/8"}]
