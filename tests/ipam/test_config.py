"""host-local configuration: the reference's defaults, validation and sources of ranges and addresses."""

from __future__ import annotations

import json

import pytest

from cni.contract.errors import INVALID_CONFIG, CNIError
from ipam import config, ranges

ip = ranges.parse_ip


def conf(ipam: dict, version: str = "1.0.0", **top) -> dict:
    return {"cniVersion": version, "name": "net1", "type": "bridge",
            "ipam": {"type": "host-local", **ipam}, **top}


def parse(ipam: dict, env_args: dict | None = None, version: str = "1.0.0", **top) -> config.IPAMConfig:
    return config.parse(conf(ipam, version, **top), env_args or {}, version)


def fails(ipam: dict, msg: str, env_args: dict | None = None, version: str = "1.0.0", **top) -> CNIError:
    with pytest.raises(CNIError) as info:
        parse(ipam, env_args, version, **top)
    assert info.value.code == INVALID_CONFIG
    assert info.value.msg == msg
    return info.value


def spans(cfg: config.IPAMConfig) -> list[list[tuple[str, str, str, str]]]:
    return [[(str(r.subnet), str(r.start), str(r.end), str(r.gateway)) for r in rs] for rs in cfg.ranges]


# ---- defaults ---------------------------------------------------------------------------------
def test_legacy_v4_defaults():
    cfg = parse({"subnet": "10.1.2.0/24"})
    assert spans(cfg) == [[("10.1.2.0/24", "10.1.2.1", "10.1.2.254", "10.1.2.1")]]
    assert cfg.name == "net1"
    assert cfg.data_dir == "/var/lib/cni/networks"
    assert cfg.routes == [] and cfg.requested == [] and cfg.resolv_conf == ""


def test_v6_defaults_end_at_last_address_of_subnet():
    cfg = parse({"ranges": [[{"subnet": "2001:db8:1::/64"}]]})
    assert spans(cfg) == [[("2001:db8:1::/64", "2001:db8:1::1", "2001:db8:1:0:ffff:ffff:ffff:ffff",
                            "2001:db8:1::1")]]


def test_explicit_range_and_gateway():
    cfg = parse({"ranges": [[{"subnet": "10.1.2.0/24", "rangeStart": "10.1.2.10", "rangeEnd": "10.1.2.20",
                              "gateway": "10.1.2.254"}]]})
    assert spans(cfg) == [[("10.1.2.0/24", "10.1.2.10", "10.1.2.20", "10.1.2.254")]]


def test_gateway_elsewhere_makes_dot_one_allocatable():
    cfg = parse({"subnet": "10.1.2.0/24", "gateway": "10.1.2.254"})
    r = cfg.ranges[0][0]
    assert (str(r.start), str(r.gateway)) == ("10.1.2.1", "10.1.2.254")


def test_gateway_outside_subnet_is_accepted_like_the_reference():
    cfg = parse({"subnet": "10.1.2.0/24", "gateway": "10.9.9.9"})
    assert str(cfg.ranges[0][0].gateway) == "10.9.9.9"


def test_data_dir_and_resolv_conf_and_smallest_subnets():
    cfg = parse({"dataDir": "/run/ipam", "resolvConf": "/etc/resolv.conf",
                 "ranges": [[{"subnet": "10.0.0.0/30"}], [{"subnet": "fd00::/126"}]]})
    assert cfg.data_dir == "/run/ipam" and cfg.resolv_conf == "/etc/resolv.conf"
    assert spans(cfg) == [[("10.0.0.0/30", "10.0.0.1", "10.0.0.2", "10.0.0.1")],
                          [("fd00::/126", "fd00::1", "fd00::3", "fd00::1")]]


# ---- order of range sets -------------------------------------------------------------------------
def test_legacy_range_goes_first_then_ranges():
    cfg = parse({"subnet": "10.1.2.0/24", "ranges": [[{"subnet": "10.1.3.0/24"}], [{"subnet": "fd00::/64"}]]})
    assert [str(rs[0].subnet) for rs in cfg.ranges] == ["10.1.2.0/24", "10.1.3.0/24", "fd00::/64"]


def test_legacy_fields_without_subnet_are_ignored():
    cfg = parse({"rangeStart": "10.9.9.9", "ranges": [[{"subnet": "10.1.3.0/24"}]]})
    assert [str(rs[0].subnet) for rs in cfg.ranges] == ["10.1.3.0/24"]


def test_runtime_ip_ranges_go_in_front():
    cfg = parse({"subnet": "10.1.2.0/24", "ranges": [[{"subnet": "10.1.3.0/24"}]]},
                runtimeConfig={"ipRanges": [[{"subnet": "10.1.4.0/24"}, {"subnet": "10.1.5.0/24"}]]})
    assert [[str(r.subnet) for r in rs] for rs in cfg.ranges] == [
        ["10.1.4.0/24", "10.1.5.0/24"], ["10.1.2.0/24"], ["10.1.3.0/24"]]


def test_dual_stack_set_per_family():
    cfg = parse({"ranges": [[{"subnet": "10.1.2.0/24"}], [{"subnet": "2001:db8::/64"}]]}, version="0.2.0")
    assert [rs[0].version for rs in cfg.ranges] == [4, 6]


# ---- validation -----------------------------------------------------------------------------------
def test_missing_ipam_and_no_ranges():
    with pytest.raises(CNIError) as info:
        config.parse({"cniVersion": "1.0.0", "name": "n"}, {}, "1.0.0")
    assert info.value.msg == "IPAM config missing 'ipam' key"
    fails({}, "no IP ranges specified")
    fails({"ranges": []}, "no IP ranges specified")


def test_host_bits_rejected():
    fails({"subnet": "10.1.2.1/24"}, "invalid range set 0: Network has host bits set. "
          "For a subnet mask of length 24 the network address is 10.1.2.0")
    fails({"ranges": [[{"subnet": "2001:db8::1/64"}]]}, "invalid range set 0: Network has host bits set. "
          "For a subnet mask of length 64 the network address is 2001:db8::")


@pytest.mark.parametrize("subnet", ["10.1.2.0/31", "10.1.2.1/32", "2001:db8::/127", "2001:db8::/128"])
def test_too_small(subnet):
    fails({"subnet": subnet}, f"invalid range set 0: Network {subnet} too small to allocate from")


def test_start_and_end_inside_subnet():
    fails({"subnet": "10.1.2.0/24", "rangeStart": "10.1.3.4"},
          "invalid range set 0: RangeStart 10.1.3.4 not in network 10.1.2.0/24")
    fails({"subnet": "10.1.2.0/24", "rangeEnd": "10.1.3.4"},
          "invalid range set 0: RangeEnd 10.1.3.4 not in network 10.1.2.0/24")
    fails({"subnet": "10.1.2.0/24", "rangeStart": "fd00::1"},
          "invalid range set 0: RangeStart fd00::1 not in network 10.1.2.0/24")
    fails({"subnet": "10.1.2.0/24", "rangeStart": "10.1.2.9", "rangeEnd": "10.1.2.8"},
          "invalid range set 0: RangeStart 10.1.2.9 not in network 10.1.2.0/24")
    fails({"subnet": "fd00::/64", "rangeStart": "fd00::9", "rangeEnd": "fd00::8"},
          "invalid range set 0: RangeStart fd00::9 not in network fd00::/64")


def test_empty_and_mixed_sets():
    fails({"ranges": [[]]}, "invalid range set 0: empty range set")
    fails({"ranges": [[{"subnet": "10.1.2.0/24"}, {"subnet": "2001:db8::/64"}]]},
          "invalid range set 0: mixed address families")


def test_overlaps_within_and_across_sets():
    fails({"ranges": [[{"subnet": "10.1.2.0/24"}, {"subnet": "10.1.2.0/25"}]]},
          "invalid range set 0: subnets 10.1.2.1-10.1.2.254 and 10.1.2.1-10.1.2.126 overlap")
    fails({"ranges": [[{"subnet": "10.1.2.0/24"}], [{"subnet": "10.1.2.0/25"}]]},
          "range set 0 overlaps with 1")
    fails({"ranges": [[{"subnet": "fd00::/64"}], [{"subnet": "10.0.0.0/8"}], [{"subnet": "fd00::/48"}]]},
          "range set 0 overlaps with 2")
    # Disjoint ranges of one subnet may share a set.
    cfg = parse({"ranges": [[{"subnet": "10.1.2.0/24", "rangeEnd": "10.1.2.100"},
                             {"subnet": "10.1.2.0/24", "rangeStart": "10.1.2.101"}]]})
    assert [str(r) for r in cfg.ranges[0]] == ["10.1.2.1-10.1.2.100", "10.1.2.101-10.1.2.254"]


def test_old_versions_take_one_range_set_per_family():
    two_v4 = {"ranges": [[{"subnet": "10.1.2.0/24"}], [{"subnet": "10.1.3.0/24"}]]}
    for version in ("0.1.0", "0.2.0"):
        fails(two_v4, f"CNI version {version} does not support more than 1 address per family",
              version=version)
    fails({"ranges": [[{"subnet": "fd00:1::/64"}], [{"subnet": "fd00:2::/64"}]]},
          "CNI version 0.2.0 does not support more than 1 address per family", version="0.2.0")
    assert len(parse(two_v4, version="0.3.0").ranges) == 2


def test_syntax_errors_use_the_reference_words():
    fails({"subnet": "bad"}, "invalid CIDR address: bad")
    fails({"subnet": "10.1.2.0/33"}, "invalid CIDR address: 10.1.2.0/33")
    fails({"subnet": "10.1.2.0/24", "rangeStart": "bad"}, "invalid IP address: bad")
    fails({"subnet": "10.1.2.0/24", "gateway": "fe80::1%eth0"}, "invalid IP address: fe80::1%eth0")
    fails({"ranges": [[{"rangeStart": "10.1.2.3"}]]}, "invalid range set 0: range has no subnet")
    fails({"ranges": "x"}, "invalid ipam.ranges: expected an array, got string")
    fails({"subnet": 5}, "invalid ipam.subnet: expected a string, got number")


def test_ipv4_mapped_addresses_are_ipv4():
    cfg = parse({"subnet": "10.1.2.0/24", "rangeStart": "::ffff:10.1.2.5"})
    assert cfg.ranges[0][0].start == ip("10.1.2.5")
    fails({"subnet": "::ffff:10.1.2.0/120"}, "invalid range set 0: IPNet IP and Mask version mismatch")


def test_keys_match_case_insensitively_last_one_wins():
    raw = {"cniVersion": "1.0.0", "Name": "net1",
           "IPAM": {"Subnet": "10.1.2.0/24", "DATADIR": "/x", "subnet": "10.1.3.0/24"}}
    cfg = config.parse(raw, {}, "1.0.0")
    assert (cfg.name, cfg.data_dir, str(cfg.ranges[0][0].subnet)) == ("net1", "/x", "10.1.3.0/24")


# ---- requested addresses ---------------------------------------------------------------------------
def test_requested_from_all_sources_in_order_deduplicated():
    cfg = parse({"subnet": "10.1.2.0/24"}, {"IP": "10.1.2.7/24"},
                args={"cni": {"ips": ["10.1.2.8", "2001:db8::9/64"]}},
                runtimeConfig={"ips": ["10.1.2.7", "10.1.2.10/24"]})
    assert cfg.requested == [ip("10.1.2.7"), ip("10.1.2.8"), ip("2001:db8::9"), ip("10.1.2.10")]


def test_cni_args_ip_takes_one_address_like_the_reference():
    assert parse({"subnet": "10.1.2.0/24"}, {"IP": "10.1.2.7"}).requested == [ip("10.1.2.7")]
    assert parse({"subnet": "10.1.2.0/24"}, {"IP": ""}).requested == []
    err = fails({"subnet": "10.1.2.0/24"},
                'ARGS: error parsing value of pair "IP=10.1.2.7,10.1.2.8": '
                'invalid IP address 10.1.2.7,10.1.2.8',
                {"IP": "10.1.2.7,10.1.2.8"})
    assert err.code == INVALID_CONFIG


def test_bad_requested_addresses():
    fails({"subnet": "10.1.2.0/24"}, "invalid IP address nope", runtimeConfig={"ips": ["nope"]})
    fails({"subnet": "10.1.2.0/24"}, "cannot understand ip: empty address in args.cni.ips",
          args={"cni": {"ips": [""]}})


# ---- routes, resolv.conf, rangeFromFile ----------------------------------------------------------------
def test_routes():
    cfg = parse({"subnet": "10.1.2.0/24", "routes": [
        {"dst": "0.0.0.0/0"}, {"dst": "192.168.0.0/16", "gw": "10.1.2.254", "mtu": 1400, "table": 7},
        {"dst": "::/0", "scope": 253}]})
    assert [(str(r.dst), str(r.gw) if r.gw else None, r.mtu, r.table, r.scope) for r in cfg.routes] == [
        ("0.0.0.0/0", None, None, None, None), ("192.168.0.0/16", "10.1.2.254", 1400, 7, None),
        ("::/0", None, None, None, 253)]
    fails({"subnet": "10.1.2.0/24", "routes": [{"dst": "x"}]}, "invalid CIDR address: x")


@pytest.mark.parametrize(("dst", "expected"), [
    # the reference host-local 1.1.1 prints 10.0.0.0/8, 10.1.2.3/24 (host bits kept, which no
    # kernel route accepts), 10.0.0.0/32, 10.0.0.0/0 (its mask is the IPv6 mask's last 32 bits)
    ("::ffff:10.0.0.0/104", "10.0.0.0/8"), ("::ffff:10.1.2.3/120", "10.1.2.0/24"),
    ("::ffff:10.0.0.0/128", "10.0.0.0/32"), ("::ffff:10.0.0.0/96", "0.0.0.0/0"),
    ("::ffff:10.0.0.0/24", "0.0.0.0/0"), ("::FFFF:10.0.0.0/104", "10.0.0.0/8")])
def test_ipv4_mapped_route_destinations_read_as_the_reference_reads_them(dst, expected):
    cfg = parse({"subnet": "10.1.2.0/24", "routes": [{"dst": dst}]})
    assert [str(r.dst) for r in cfg.routes] == [expected]


def test_resolv_conf():
    dns = config.parse_resolv_conf(
        "# comment\n; also\nnameserver 10.0.0.1\nnameserver  fd00::53 \ndomain example.com\n"
        "search a.example b.example\nsearch c.example\noptions ndots:5 rotate\nbogus\nsortlist 1.2.3.4\n")
    assert dns.nameservers == ["10.0.0.1", "fd00::53"]
    assert dns.domain == "example.com"
    assert dns.search == ["a.example", "b.example", "c.example"]
    assert dns.options == ["ndots:5", "rotate"]


def test_range_from_file_used_only_without_other_ranges():
    files = {"/r.json": json.dumps({"subnet": "10.5.0.0/16", "rangeStart": "10.5.1.0"}).encode()}
    cfg = config.parse(conf({"rangeFromFile": "/r.json"}), {}, "1.0.0", read_file=files.__getitem__)
    assert spans(cfg) == [[("10.5.0.0/16", "10.5.1.0", "10.5.255.254", "10.5.0.1")]]
    cfg = config.parse(conf({"rangeFromFile": "/r.json", "subnet": "10.1.2.0/24"}), {}, "1.0.0",
                       read_file=files.__getitem__)
    assert [str(rs[0].subnet) for rs in cfg.ranges] == ["10.1.2.0/24"]

    def missing(path):
        raise FileNotFoundError(2, "No such file or directory", path)

    with pytest.raises(CNIError, match=r'failed to read rangeFromFile "/r\.json": No such file'):
        config.parse(conf({"rangeFromFile": "/r.json"}), {}, "1.0.0", read_file=missing)


# ---- names --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "name"), [
    ("10.1.2.3", "10.1.2.3"),
    ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
    ("2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1"),
    ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
    ("2001:db8:1:1:1:1:0:1", "2001:db8:1:1:1:1:0:1"),
    ("::ffff:10.1.2.3", "10.1.2.3"),
])
def test_names_are_go_canonical(text, name):
    assert config.ip_name(config.parse_ip(text)) == name


def test_parse_ip_refuses_what_go_refuses():
    for text in ("", " 10.1.2.3", "10.1.2.03", "10.1.2.3/24", "fe80::1%eth0", "1.2.3", "x"):
        assert config.parse_ip(text) is None, text
