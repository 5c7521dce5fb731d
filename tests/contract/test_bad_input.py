"""Bad input to the built executables: the exact CNI error, and nothing changed on the host.

Every case expects: a non-zero exit; stdout exactly one JSON object `{cniVersion?, code, msg,
details?}` with the spec's code and a message naming the problem; no traceback anywhere; the
host's links, addresses and routes (and firewall, for plugins that touch it) as they were; and
the IPAM data directory untouched.

Decisions where Go's skel and the spec part ways:
- A prevResult that does not parse is code 6 (decoding failure). The Go plugins wrap it in a
  plain error, which skel turns into 999; 6 says what happened.
- A non-string cniVersion is code 6, as in skel (its version decoder fails on the type).
- A malformed or unknown CNI_ARGS is code 4: it is an invalid environment variable. The Go plugins
  return a plain error (999).
- An IPAM type missing from CNI_PATH is code 7 (the config names a plugin that is not there).
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from helpers import HostSnapshot, host_changes, host_snapshot, unique_name, unique_subnet_v4

from .plugin_specs import SPECS, Ctx

pytestmark = pytest.mark.root

MISSING = object()  # an environment variable left unset


@dataclass
class Bad:
    """One bad call: which plugin, what to change, and the error it must give."""

    id: str
    code: int
    needles: tuple[str, ...]
    plugin: str = "bridge"
    command: str = "ADD"
    version: str = "1.0.0"
    change: Callable[[dict], Any] | None = None  # edits the config in place
    stdin: bytes | None = None  # replaces the config entirely
    env: dict[str, Any] = field(default_factory=dict)  # CNI_* overrides; MISSING unsets


def setter(**values: Any) -> Callable[[dict], None]:
    def change(config: dict) -> None:
        config.update(values)
    return change


def pm_maps(**entry: Any) -> Callable[[dict], None]:
    """portmap with one mapping (containerd's capitalised keys), `entry` overriding its fields."""
    def change(config: dict) -> None:
        mapping = {"HostPort": 18080, "ContainerPort": 80, "Protocol": "tcp", "HostIP": ""}
        for key, value in entry.items():
            mapping.pop(key[0].upper() + key[1:], None)
            mapping[key] = value
        config["runtimeConfig"] = {"portMappings": [mapping]}
    return change


def pm_set(**values: Any) -> Callable[[dict], None]:
    """portmap with a valid mapping and `values` set (None: the key removed)."""
    def change(config: dict) -> None:
        pm_maps()(config)
        for key, value in values.items():
            if value is None:
                config.pop(key, None)
            else:
                config[key] = value
    return change


def dropper(*keys: str) -> Callable[[dict], None]:
    def change(config: dict) -> None:
        for key in keys:
            config.pop(key, None)
    return change


def ipam_setter(**values: Any) -> Callable[[dict], None]:
    def change(config: dict) -> None:
        config["ipam"].update(values)
    return change


def prev(value: Any) -> Callable[[dict], None]:
    return setter(prevResult=value)


CASES = [
    # ---- stdin that is not a config
    Bad("not-json", 6, ("JSON",), stdin=b"{not json"),
    Bad("empty-stdin", 6, ("JSON",), stdin=b""),
    Bad("binary-stdin", 6, ("JSON",), stdin=b"\xff\xfe\x00"),
    Bad("json-array", 6, ("object",), stdin=b'[{"name": "n"}]'),
    Bad("json-string", 6, ("object",), stdin=b'"bridge"'),
    Bad("json-null", 6, ("object",), stdin=b"null"),
    Bad("two-objects", 6, ("JSON",), stdin=b'{"name": "a"} {"name": "b"}'),
    # ---- wrong types (code 7) and unsupported values (code 2): the message names key and value
    Bad("mtu-string", 7, ("mtu", '"1500"'), change=setter(mtu="1500")),
    Bad("mtu-float", 7, ("mtu", "1500.5"), change=setter(mtu=1500.5)),
    Bad("mtu-too-big", 7, ("mtu", "70000"), change=setter(mtu=70000)),
    Bad("isgateway-string", 7, ("isGateway", '"yes"'), change=setter(isGateway="yes")),
    Bad("vlan-out-of-range", 7, ("vlan", "5000"), change=setter(vlan=5000)),
    Bad("bridge-name-too-long", 7, ("bridge",), change=setter(bridge="b" * 16)),
    Bad("bridge-name-slash", 7, ("bridge", "a/b"), change=setter(bridge="a/b")),
    Bad("ipam-string", 7, ("ipam", '"host-local"'), change=setter(ipam="host-local")),
    Bad("dns-list", 7, ("dns",), change=setter(dns=["10.96.0.10"])),
    Bad("masq-backend-enum", 2, ("ipMasqBackend", '"pf"'), change=setter(ipMasqBackend="pf")),
    Bad("folded-key-wrong-type", 7, ("mtu", '"big"'), change=setter(MTU="big")),
    Bad("loopback-args-list", 7, ("args",), plugin="loopback", change=setter(args=["x"])),
    Bad("hostlocal-route-no-dst", 7, ("dst",), plugin="host-local",
        change=ipam_setter(routes=[{"gw": "10.0.0.1"}])),
    Bad("hostlocal-ranges-object", 7, ("ranges",), plugin="host-local", change=ipam_setter(ranges={})),
    Bad("hostlocal-no-ipam", 7, ("ipam",), plugin="host-local", change=dropper("ipam")),
    Bad("bandwidth-negative-rate", 7, ("ingressRate", "-1"), plugin="bandwidth",
        change=setter(ingressRate=-1, ingressBurst=1000)),
    Bad("bandwidth-rate-string", 7, ("egressRate", '"1M"'), plugin="bandwidth",
        change=setter(egressRate="1M", egressBurst=1000)),
    Bad("portmap-host-port-0", 7, ("hostPort", "0"), plugin="portmap", change=pm_maps(HostPort=0)),
    Bad("portmap-host-port-65536", 7, ("hostPort", "65536"), plugin="portmap",
        change=pm_maps(hostPort=65536)),
    Bad("portmap-container-port-0", 7, ("containerPort", "0"), plugin="portmap",
        change=pm_maps(ContainerPort=0)),
    Bad("portmap-container-port-negative", 7, ("containerPort", "-80"), plugin="portmap",
        change=pm_maps(containerPort=-80)),
    Bad("portmap-port-string", 7, ("hostPort", '"80"'), plugin="portmap", change=pm_maps(hostPort="80")),
    Bad("portmap-protocol-icmp", 7, ("protocol", "icmp"), plugin="portmap", change=pm_maps(Protocol="icmp")),
    Bad("portmap-host-ip-prefix", 7, ("hostIP", "10.0.0.1/24"), plugin="portmap",
        change=pm_maps(HostIP="10.0.0.1/24")),
    Bad("portmap-host-ip-zone", 7, ("hostIP", "fe80::1%eth0"), plugin="portmap",
        change=pm_maps(hostIP="fe80::1%eth0")),
    Bad("portmap-host-ip-name", 7, ("hostIP", "localhost"), plugin="portmap",
        change=pm_maps(hostIP="localhost")),
    Bad("portmap-mark-conflict", 7, ("externalSetMarkChain", "markMasqBit"), plugin="portmap",
        change=pm_set(markMasqBit=14, externalSetMarkChain="KUBE-MARK-MASQ")),
    Bad("portmap-mark-bit-32", 7, ("markMasqBit", "32"), plugin="portmap", change=pm_set(markMasqBit=32)),
    Bad("portmap-conditions-other-backend", 7, ("conditionsV4", "nftables"), plugin="portmap",
        change=pm_set(backend="iptables", conditionsV4=["ip", "saddr", "10.0.0.0/8"])),
    Bad("portmap-no-prev-result", 7, ("chained",), plugin="portmap", change=pm_set(prevResult=None)),
    # ---- the network name
    Bad("no-name", 7, ("name",), change=dropper("name")),
    Bad("empty-name", 7, ("name",), change=setter(name="")),
    Bad("name-with-space", 7, ("name", "bad name"), change=setter(name="bad name")),
    Bad("name-with-slash", 7, ("name", "a/b"), change=setter(name="a/b")),
    Bad("name-a-number", 7, ("name",), change=setter(name=5)),
    # ---- versions
    Bad("version-9.9.9", 1, ("incompatible", "9.9.9"), change=setter(cniVersion="9.9.9")),
    Bad("version-0.5.0", 1, ("incompatible", "0.5.0"), change=setter(cniVersion="0.5.0")),
    Bad("version-garbage", 1, ("incompatible", "one.two"), change=setter(cniVersion="one.two")),
    Bad("version-number", 6, ("cniVersion",), change=setter(cniVersion=1.0)),
    Bad("bandwidth-0.2.0", 1, ("incompatible", "0.2.0"), plugin="bandwidth", version="0.2.0"),
    Bad("check-0.3.1", 1, ("CHECK",), command="CHECK", version="0.3.1"),
    Bad("status-1.0.0", 1, ("STATUS",), command="STATUS", version="1.0.0"),
    Bad("gc-0.4.0", 1, ("GC",), command="GC", version="0.4.0"),
    # ---- the verb
    Bad("unknown-verb", 4, ("CNI_COMMAND", "FROB"), command="FROB"),
    Bad("lowercase-verb", 4, ("CNI_COMMAND", "add"), command="add"),
    Bad("old-verb-get", 4, ("CNI_COMMAND", "GET"), command="GET"),
    # ---- missing variables: every one named, together
    Bad("missing-containerid", 4, ("CNI_CONTAINERID",), env={"CNI_CONTAINERID": MISSING}),
    Bad("missing-netns", 4, ("CNI_NETNS",), env={"CNI_NETNS": MISSING}),
    Bad("empty-netns", 4, ("CNI_NETNS",), env={"CNI_NETNS": ""}),
    Bad("missing-ifname", 4, ("CNI_IFNAME",), env={"CNI_IFNAME": MISSING}),
    Bad("missing-path", 4, ("CNI_PATH",), env={"CNI_PATH": MISSING}),
    Bad("missing-all-four", 4, ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
        env={"CNI_CONTAINERID": MISSING, "CNI_NETNS": MISSING, "CNI_IFNAME": MISSING, "CNI_PATH": MISSING}),
    Bad("del-missing-id-and-ifname", 4, ("CNI_CONTAINERID", "CNI_IFNAME"), command="DEL",
        env={"CNI_CONTAINERID": "", "CNI_IFNAME": ""}),
    Bad("check-missing-netns", 4, ("CNI_NETNS",), command="CHECK", env={"CNI_NETNS": ""}),
    Bad("gc-missing-path", 4, ("CNI_PATH",), command="GC", version="1.1.0", env={"CNI_PATH": MISSING}),
    Bad("status-missing-path", 4, ("CNI_PATH",), command="STATUS", version="1.1.0",
        env={"CNI_PATH": MISSING}),
    # ---- container IDs and interface names
    Bad("id-leading-dash", 4, ("CNI_CONTAINERID",), env={"CNI_CONTAINERID": "-abc"}),
    Bad("id-slash", 4, ("CNI_CONTAINERID",), env={"CNI_CONTAINERID": "a/b"}),
    Bad("id-space", 4, ("CNI_CONTAINERID",), env={"CNI_CONTAINERID": "a b"}),
    Bad("id-trailing-newline", 4, ("CNI_CONTAINERID",), env={"CNI_CONTAINERID": "abc\n"}),
    Bad("id-dot-first", 4, ("CNI_CONTAINERID",), env={"CNI_CONTAINERID": ".abc"}),
    Bad("del-id-colon", 4, ("CNI_CONTAINERID",), command="DEL", env={"CNI_CONTAINERID": "a:b"}),
    Bad("ifname-too-long", 4, ("CNI_IFNAME",), env={"CNI_IFNAME": "e" * 16}),
    Bad("ifname-too-many-bytes", 4, ("CNI_IFNAME",), env={"CNI_IFNAME": "é" * 8}),
    Bad("ifname-dot", 4, ("CNI_IFNAME",), env={"CNI_IFNAME": "."}),
    Bad("ifname-dotdot", 4, ("CNI_IFNAME",), env={"CNI_IFNAME": ".."}),
    Bad("ifname-slash", 4, ("CNI_IFNAME",), env={"CNI_IFNAME": "eth/0"}),
    Bad("ifname-colon", 4, ("CNI_IFNAME",), env={"CNI_IFNAME": "eth0:1"}),
    Bad("ifname-space", 4, ("CNI_IFNAME",), env={"CNI_IFNAME": "eth 0"}),
    Bad("ifname-tab", 4, ("CNI_IFNAME",), command="DEL", env={"CNI_IFNAME": "eth\t0"}),
    Bad("id-and-ifname-bad-together", 4, ("CNI_CONTAINERID", "CNI_IFNAME"),
        env={"CNI_CONTAINERID": "/x", "CNI_IFNAME": ".."}),
    # ---- prevResult
    Bad("prev-address-without-prefix", 6, ("prevResult",),
        change=prev({"cniVersion": "1.0.0", "ips": [{"address": "10.1.0.5"}]})),
    Bad("prev-ips-not-list", 6, ("prevResult",), change=prev({"cniVersion": "1.0.0", "ips": "10.1.0.5/24"})),
    Bad("prev-bad-version", 6, ("prevResult",), change=prev({"cniVersion": "x.y.z", "ips": []})),
    Bad("prev-not-object", 7, ("prevResult",), change=prev(["10.1.0.5/24"])),
    Bad("bandwidth-prev-garbage", 6, ("prevResult",), plugin="bandwidth",
        change=prev({"cniVersion": "1.0.0", "interfaces": "eth0"})),
    # ---- the namespace
    Bad("netns-missing", 3, ("netns", "pycni-gone-"), env={"CNI_NETNS": "/var/run/netns/pycni-gone-{hex}"}),
    Bad("netns-is-a-file", 3, ("netns",), env={"CNI_NETNS": "/etc/hostname"}),
    Bad("loopback-netns-missing", 3, ("netns",), plugin="loopback",
        env={"CNI_NETNS": "/var/run/netns/pycni-gone-{hex}"}),
    Bad("netns-is-the-hosts", 8, ("netns",), env={"CNI_NETNS": "{hostns}"}),
    Bad("netns-is-the-plugins-own", 8, ("netns",), env={"CNI_NETNS": "/proc/self/ns/net"}),
    Bad("loopback-del-in-the-hosts-netns", 8, ("netns",), plugin="loopback", command="DEL",
        env={"CNI_NETNS": "{hostns}"}),
    Bad("loopback-add-in-the-hosts-netns", 8, ("netns",), plugin="loopback",
        env={"CNI_NETNS": "{hostns}"}),
    # ---- CNI_ARGS
    Bad("args-no-equals", 4, ("CNI_ARGS", "garbage"), env={"CNI_ARGS": "garbage"}),
    Bad("args-unknown-key", 4, ("CNI_ARGS", "FOO=bar"), env={"CNI_ARGS": "FOO=bar"}),
    Bad("args-trailing-semicolon", 4, ("CNI_ARGS",), env={"CNI_ARGS": "MAC=0a:58:0a:01:00:09;"}),
    Bad("args-value-with-equals", 4, ("CNI_ARGS", "MAC=a=b"), env={"CNI_ARGS": "MAC=a=b"}),
    Bad("args-ignoreunknown-not-boolean", 4, ("CNI_ARGS", "IgnoreUnknown"), plugin="host-local",
        env={"CNI_ARGS": "IgnoreUnknown=maybe;K8S_POD_NAME=x"}),
    Bad("args-ignoreunknown-false", 4, ("CNI_ARGS", "K8S_POD_NAME=x"), plugin="host-local",
        env={"CNI_ARGS": "IgnoreUnknown=0;K8S_POD_NAME=x"}),
    # ---- delegation
    Bad("ipam-type-not-on-path", 7, ("nosuchipam",), change=ipam_setter(type="nosuchipam")),
    Bad("ipam-type-is-a-path", 7, ("plugin type", "/bin/true"), change=ipam_setter(type="/bin/true")),
]


@pytest.fixture
def ctx(netns, state_dir, bridge_name) -> Ctx:
    return Ctx(netns=netns(), state_dir=state_dir, bridge=bridge_name, subnet=unique_subnet_v4(24),
               network=unique_name("bad-", 8))


def config_for(case: Bad, ctx: Ctx) -> dict:
    config = copy.deepcopy(SPECS[case.plugin].config(ctx, case.version))
    if case.plugin == "bandwidth":
        config.setdefault("prevResult", {"cniVersion": case.version, "interfaces": [{"name": "eth0"}]})
    if case.change is not None:
        case.change(config)
    return config


def state_of(ctx: Ctx) -> list[tuple[str, bytes]]:
    """Every file under the IPAM data directory, with its contents."""
    out = []
    for root, _dirs, files in os.walk(ctx.ipam_dir):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                out.append((os.path.relpath(path, ctx.ipam_dir), f.read()))
    return sorted(out)


def ours(ctx: Ctx) -> tuple[str, ...]:
    """Strings any host object this test's call could create would mention: its unique names, its
    subnet, and `lo` (which a DEL aimed at the host's own namespace would take down)."""
    prefix = str(ctx.subnet.network_address).rsplit(".", 1)[0] + "."
    return ctx.bridge, ctx.network, ctx.netns.name, prefix, '"ifname": "lo"'


def changes_by(before: HostSnapshot, after: HostSnapshot, ctx: Ctx) -> list[str]:
    """Differences in the host namespace naming one of this test's unique objects; anything
    created in the container namespace is caught by comparing that namespace, which nothing
    else touches."""
    return host_changes(before, after, ours(ctx))


def test_at_least_forty_cases():
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Bad, bin_dir, run_plugin, ctx):
    path = bin_dir / case.plugin
    assert path.exists(), f"{case.plugin} is not built"
    hexid = unique_name("", 8)
    env: dict[str, Any] = {"CNI_CONTAINERID": ctx.network, "CNI_NETNS": ctx.netns.path, "CNI_IFNAME": "eth0",
                           "CNI_ARGS": "", "CNI_PATH": str(bin_dir)}
    hostns = f"/proc/{os.getpid()}/ns/net"  # the namespace this test (and the host) runs in
    env.update({k: (v.replace("{hex}", hexid).replace("{hostns}", hostns) if isinstance(v, str) else v)
                for k, v in case.env.items()})
    stdin = case.stdin if case.stdin is not None else json.dumps(config_for(case, ctx)).encode()
    firewall = SPECS[case.plugin].touches_host
    before, state_before = host_snapshot(firewall=firewall), state_of(ctx)
    inside_before = host_snapshot(ctx.netns, firewall=False)

    out = run_plugin(path, case.command, stdin,
                     netns=None if env["CNI_NETNS"] is MISSING else env["CNI_NETNS"],
                     container_id=None if env["CNI_CONTAINERID"] is MISSING else env["CNI_CONTAINERID"],
                     ifname=None if env["CNI_IFNAME"] is MISSING else env["CNI_IFNAME"],
                     cni_args=env["CNI_ARGS"],
                     extra_env={"CNI_PATH": None if env["CNI_PATH"] is MISSING else env["CNI_PATH"]})

    after, state_after = host_snapshot(firewall=firewall), state_of(ctx)
    inside_after = host_snapshot(ctx.netns, firewall=False)
    assert out.rc != 0, out.describe()
    text = out.stdout.strip()
    assert text and "\n" not in text, "stdout must be exactly one JSON object\n" + out.describe()
    answer = json.loads(text)
    assert isinstance(answer, dict) and set(answer) <= {"cniVersion", "code", "msg", "details"}, answer
    assert "Traceback" not in out.stdout + out.stderr, out.describe()
    assert answer["code"] == case.code, out.describe()
    said = f"{answer['msg']} {answer.get('details', '')}"
    for needle in case.needles:
        assert needle.replace("{hex}", hexid) in said, f"{needle!r} not in {said!r}"
    changes = changes_by(before, after, ctx)
    assert not changes, "host changed:\n" + "\n".join(changes)
    assert inside_before == inside_after, "container netns changed:\n" + inside_before.diff(inside_after)
    assert state_before == state_after, "IPAM state changed"


def test_a_failure_inside_the_plugin_is_one_json_object_and_changes_nothing(bin_dir, run_plugin, ctx):
    """bandwidth with limits and a prevResult whose interfaces match nothing: a plugin-level error,
    reported as one JSON object with the host unchanged."""
    path = bin_dir / "bandwidth"
    assert path.exists(), "bandwidth is not built"
    config = {"cniVersion": "1.0.0", "name": ctx.network, "type": "bandwidth", "ingressRate": 8000,
              "ingressBurst": 16000, "prevResult": {"cniVersion": "1.0.0", "interfaces": [
                  {"name": unique_name("nope", 8)}, {"name": "eth0", "sandbox": ctx.netns.path}]}}
    before = host_snapshot()
    out = run_plugin(path, "ADD", config, netns=ctx.netns.path, container_id=ctx.network)
    assert out.rc != 0
    answer = json.loads(out.stdout)
    assert isinstance(answer["code"], int) and answer["msg"]
    assert "Traceback" not in out.stdout
    assert not changes_by(before, host_snapshot(), ctx)
