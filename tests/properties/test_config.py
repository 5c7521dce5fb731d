"""Each plugin's config loading over configs the schema passed: a config object or a CNI error with
the spec's code, never another exception (which a plugin would turn into 999)."""

from __future__ import annotations

import copy

from hypothesis import given, settings
from hypothesis import strategies as st

from cni.contract import schema
from cni.contract.errors import CNIError
from cni.plugins.bandwidth import shaping
from cni.plugins.bridge import config as bridge_config
from ipam import config as ipam_config

from .strategies import JSON

CIDRS = st.sampled_from(["10.1.0.0/24", "10.1.0.0/31", "10.1.0.5/24", "2001:db8::/64", "2001:db8::/127",
                         "300.1.1.1/24", "10.1.0.0/33", "", "x"])
IPS = st.sampled_from(["10.1.0.1", "10.1.0.200", "10.2.0.1", "2001:db8::1", "::", "garbage", ""])
RANGE = st.fixed_dictionaries({"subnet": CIDRS},
                              optional={"rangeStart": IPS, "rangeEnd": IPS, "gateway": IPS})
ROUTE = st.fixed_dictionaries({"dst": CIDRS}, optional={
    "gw": IPS, "mtu": st.integers(-2, 1 << 33), "table": st.integers(-2, 1 << 33),
    "priority": st.integers(-2, 1 << 33), "scope": st.integers(-2, 300), "advmss": st.integers(-2, 1 << 33)})


def _passes_schema(config: dict, name: str) -> dict | None:
    try:
        return schema.validate(copy.deepcopy(config), name)
    except CNIError:
        return None


@settings(max_examples=200, deadline=None)
@given(ipam=st.fixed_dictionaries({"type": st.just("host-local")}, optional={
    "subnet": CIDRS, "rangeStart": IPS, "rangeEnd": IPS, "gateway": IPS,
    "ranges": st.lists(st.lists(RANGE, max_size=3), max_size=3) | JSON,
    "routes": st.lists(ROUTE, max_size=3) | JSON, "dataDir": st.text(max_size=10),
    "resolvConf": st.sampled_from(["", "/nonexistent", "/x\0y"])}),
       ip=st.sampled_from(["", "10.1.0.9", "10.1.0.9,2001:db8::9", "bogus"]))
def test_host_local_config_parses_or_code_7(ipam, ip):
    config = {"cniVersion": "1.0.0", "name": "n", "type": "host-local", "ipam": ipam}
    config = _passes_schema(config, "host-local")
    if config is None:
        return
    try:
        parsed = ipam_config.parse(config, {"IP": ip} if ip else {}, "1.0.0", read_file=lambda p: b"{}")
    except CNIError as e:
        assert e.code in (7, 4), e
        return
    for rs in parsed.ranges:
        for r in rs:
            assert r.contains(r.start) and r.contains(r.end) and r.start in r.subnet
    for route in parsed.routes:
        for key, bound in (("mtu", 1 << 32), ("table", 1 << 32), ("priority", 1 << 32), ("scope", 256)):
            value = getattr(route, key)
            assert value is None or 0 <= value < bound


@settings(max_examples=200, deadline=None)
@given(extra=st.dictionaries(st.sampled_from(["bridge", "mtu", "vlan", "vlanTrunk", "hairpinMode",
                                              "promiscMode", "isGateway", "isDefaultGateway", "forceAddress",
                                              "ipMasq",
                                              "ipMasqBackend", "mac", "macspoofchk", "enabledad",
                                              "disableContainerInterface", "preserveDefaultVlan", "dns",
                                              "portIsolation"]),
                             JSON | st.text(max_size=16) | st.integers(-5, 5000), max_size=4),
       mac=st.sampled_from(["", "0a:58:0a:01:00:05", "ff:ff:ff:ff:ff:ff", "nonsense"]))
def test_bridge_config_loads_or_code_7(extra, mac):
    config = _passes_schema({"cniVersion": "1.0.0", "name": "n", "type": "bridge", **extra}, "bridge")
    if config is None:
        return
    try:
        conf = bridge_config.load(config, {"MAC": mac} if mac else {})
    except CNIError as e:
        assert e.code in (7, 4, 2), e
        return
    assert bridge_config.bridge_name_problem(conf.bridge) == ""
    assert not (conf.hairpin and conf.promisc)


@settings(max_examples=200, deadline=None)
@given(limits=st.dictionaries(st.sampled_from(["ingressRate", "ingressBurst", "egressRate", "egressBurst"]),
                              st.integers(-1, 1 << 66) | JSON, max_size=4),
       runtime=st.none() | st.dictionaries(st.sampled_from(["ingressRate", "ingressBurst", "egressRate",
                                                            "egressBurst"]), st.integers(-1, 1 << 40),
                                           max_size=4))
def test_bandwidth_limits_load_or_code_7(limits, runtime):
    config = {"cniVersion": "1.0.0", "name": "n", "type": "bandwidth", **limits}
    if runtime is not None:
        config["runtimeConfig"] = {"bandwidth": runtime}
    config = _passes_schema(config, "bandwidth")
    if config is None:
        return
    chosen = shaping.select_limits(config)
    if chosen is None:
        return
    try:
        shaping.validate(chosen)
    except CNIError as e:
        assert e.code == 7, e
        return
    for rate, burst in ((chosen.ingress_rate, chosen.ingress_burst),
                        (chosen.egress_rate, chosen.egress_burst)):
        assert (rate == 0) == (burst == 0) and 0 <= burst // 8 < (1 << 32) - 1
