"""Every row of the hostile corpus (corpus.py), run against the built executables.

Each case runs the plugin in a network namespace of its own (its "host": nothing else on the
machine touches it, so the host is compared exactly, not filtered) with the container in a second
one. A case must: answer within BOUND seconds (a subprocess timeout: a hang is a failure, not a
wait); exit non-zero with exactly one JSON object on stdout carrying the row's code; print no
traceback; and leave links, addresses, routes, qdiscs, iptables, ip6tables and nft rules of both
namespaces, and every file under the state directory, exactly as they were.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
from pathlib import Path

import pytest
from helpers import ip_json, ns_argv, ns_exec, tc_json, unique_ifname

from .corpus import PLUGINS, QUIET, ROWS, Case, Quiet, World, base_config, seed_reservation

pytestmark = pytest.mark.root

BOUND = 20  # seconds for one call; every wait inside a plugin is bounded well below this


# ---------------------------------------------------------------- snapshots


def _firewall(ns: str) -> dict[str, str]:
    out = {}
    for argv in (["iptables-save"], ["ip6tables-save"], ["nft", "list", "ruleset"]):
        proc = ns_exec(ns, *argv, check=False)
        lines = [ln for ln in proc.stdout.splitlines() if not ln.startswith("#")]
        out[argv[0]] = "\n".join(ln.split(" [")[0] if ln.startswith(":") else ln for ln in lines)
    return out


# Counters, lifetimes and timers that move by themselves.
VOLATILE = frozenset({"valid_life_time", "preferred_life_time", "stats", "stats64", "expires", "used",
                      "gc_timer", "hello_timer", "tcn_timer", "topology_change_timer", "forward_delay_timer",
                      "hold_timer", "message_age_timer"})


def _volatile(value):
    if isinstance(value, dict):
        return {k: _volatile(v) for k, v in value.items()
                if k not in VOLATILE}
    if isinstance(value, list):
        return [_volatile(v) for v in value]
    return value


def differences(before, after, path: str = "") -> list[str]:
    """Where two snapshots differ, as readable paths."""
    if isinstance(before, dict) and isinstance(after, dict):
        out = []
        for key in sorted(set(before) | set(after), key=str):
            out += differences(before.get(key), after.get(key), f"{path}.{key}")
        return out
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [d for i, (a, b) in enumerate(zip(before, after, strict=True))
                for d in differences(a, b, f"{path}[{i}]")]
    return [] if before == after else [f"{path}: {before!r} -> {after!r}"]


def netns_state(ns: str) -> dict:
    """Links, addresses, routes (all tables), qdiscs and firewall rules of one namespace."""
    return _volatile({
        "links": ip_json("-d", "link", "show", netns=ns),
        "addresses": ip_json("addr", "show", netns=ns),
        "routes": ip_json("-4", "route", "show", "table", "all", netns=ns)
        + ip_json("-6", "route", "show", "table", "all", netns=ns),
        "qdiscs": tc_json("qdisc", "show", netns=ns),
        "firewall": _firewall(ns),
    })


def files_state(root: Path) -> list[tuple]:
    """Every entry under root: its type and, for a regular file, its size and (small ones) content.
    Nothing is opened but regular files, so a planted FIFO cannot stall the test itself."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            if name.startswith("last_reserved_ip."):
                continue  # host-local's round-robin cursor: it moves on by design, as the reference's
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            entry: tuple = (os.path.relpath(path, root), stat.S_IFMT(st.st_mode), st.st_mode & 0o7777)
            if stat.S_ISREG(st.st_mode):
                content = b""
                if st.st_size <= 65536:
                    with open(path, "rb") as f:
                        content = f.read()
                entry += (st.st_size, content)
            elif stat.S_ISLNK(st.st_mode):
                entry += (os.readlink(path),)
            out.append(entry)
    return sorted(out)


# ---------------------------------------------------------------- one world per case


def call(plugin: str, command: str, w: World, stdin: bytes, env_over: dict, bin_dir: Path
         ) -> subprocess.CompletedProcess:
    """Run the plugin inside the world's host namespace, as a runtime would, within BOUND."""
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CNI_COMMAND": command, "CNI_CONTAINERID": w.container_id,
           "CNI_NETNS": w.container_ns, "CNI_IFNAME": "eth0", "CNI_ARGS": "", "CNI_PATH": str(bin_dir),
           "XTABLES_LOCKFILE": str(w.state / "xtables.lock"), **w.env}
    if command in ("GC", "STATUS"):
        env.pop("CNI_NETNS")
        env.pop("CNI_IFNAME")
        env.pop("CNI_CONTAINERID")
    for key, value in env_over.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    argv = ns_argv(w.host_ns, str(bin_dir / plugin), keep_mounts=True)  # the runtime's mounts
    try:
        return subprocess.run(argv, input=stdin, env=env, capture_output=True, timeout=BOUND)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"{plugin} {command} gave no answer within {BOUND} s "
                             f"(stderr: {e.stderr!r})") from None


def seed(kind: str, w: World, bin_dir: Path) -> None:
    """Legitimate state a GC must keep: a reservation of a live attachment and, for bridge and
    bandwidth, what a real attachment leaves on the host (masquerade rules, an IFB). `colliding-*`:
    what the attachment (network + cid[0], cid[1:]) leaves, whose names are the world's."""
    if kind.startswith("colliding-"):
        seed_colliding(kind, w, bin_dir)
        return
    if kind != "gc-bridge":
        seed_reservation(w)
    if kind == "gc-bridge":
        config = base_config("bridge", w, "1.0.0", "ADD")
        config["ipMasq"] = True
        out = call("bridge", "ADD", w, json.dumps(config).encode(), {"CNI_CONTAINERID": "live-container"},
                   bin_dir)
        assert out.returncode == 0, out.stdout + out.stderr
    elif kind == "gc-bandwidth":
        from cni.layout import bandwidth as ifb_layout

        name = ifb_layout.ifb_name(w.network, "live-container")
        ns_exec(w.host_ns, "ip", "link", "add", name, "type", "ifb")
        alias = ifb_layout.ifb_alias(w.network, "live-container")
        ns_exec(w.host_ns, "ip", "link", "set", name, "alias", alias)


def seed_colliding(kind: str, w: World, bin_dir: Path) -> None:
    from cni.layout import bandwidth as ifb_layout

    network, cid = w.network + w.container_id[0], w.container_id[1:]
    if kind == "colliding-ifb":
        name = ifb_layout.ifb_name(network, cid)
        assert name == ifb_layout.ifb_name(w.network, w.container_id)
        ns_exec(w.host_ns, "ip", "link", "add", name, "type", "ifb")
        ns_exec(w.host_ns, "ip", "link", "set", name, "alias", ifb_layout.ifb_alias(network, cid))
        return
    config = base_config("bridge", w, "1.0.0", "ADD")
    config.update(name=network, ipMasq=True, ipMasqBackend=kind.rsplit("-", 1)[1])
    env = {"CNI_CONTAINERID": cid, "CNI_IFNAME": "eth1"}  # not the world's eth0: its DEL removes that
    out = call("bridge", "ADD", w, json.dumps(config).encode(), env, bin_dir)
    assert out.returncode == 0, out.stdout + out.stderr


def settle_bridge(w: World) -> None:
    """Wait (a bounded poll, not a timing assertion) until the bridge's carrier is on and its
    multicast route made: the kernel does both a moment after the port comes up."""
    for _ in range(100):
        links = ip_json("link", "show", "dev", w.bridge, netns=w.host_ns)
        routes = ip_json("-6", "route", "show", "table", "local", "dev", w.bridge, netns=w.host_ns)
        if links and links[0].get("operstate") == "UP" and routes:
            return
        time.sleep(0.05)
    raise AssertionError(f"bridge {w.bridge} did not come up")


def prepare(case: Case | Quiet, w: World, bin_dir: Path) -> tuple[bytes, dict]:
    w.state.mkdir(parents=True, exist_ok=True)
    # As on a node that ran pods before: the network's directory and its lock exist.
    w.network_dir.mkdir(parents=True)
    (w.network_dir / "lock").write_bytes(b"")
    if case.plugin == "bridge":
        # As on a node: the bridge exists, with a port (carrier on) and its own MAC, so a veth that a
        # failed ADD made and removed again leaves no trace on it. No IPv6 link-local address: its
        # DAD would change the snapshot by itself.
        port, peer = unique_ifname("php"), unique_ifname("phq")
        for argv in (("link", "add", w.bridge, "address", "02:00:5e:10:00:01", "type", "bridge"),
                     ("link", "set", w.bridge, "addrgenmode", "none"),
                     ("link", "add", port, "type", "veth", "peer", "name", peer),
                     ("link", "set", port, "addrgenmode", "none"),
                     ("link", "set", peer, "addrgenmode", "none"),
                     ("link", "set", port, "master", w.bridge), ("link", "set", port, "up"),
                     ("link", "set", peer, "up"), ("link", "set", w.bridge, "up")):
            ns_exec(w.host_ns, "ip", *argv)
        settle_bridge(w)
    if getattr(case, "seed", None):
        seed(case.seed, w, bin_dir)
    if case.plant is not None:
        case.plant(w)
    version = case.cni_version if isinstance(case, Case) else case.version
    if isinstance(case, Case) and case.stdin is not None:
        stdin = case.stdin(w)
    else:
        config = base_config(case.plugin, w, version, case.command)
        if isinstance(case, Case) and case.config is not None:
            case.config(config, w)
        if isinstance(case, Quiet):
            config.update(case.extra)
        stdin = json.dumps(config).encode()
    env = case.env(w) if case.env is not None else {}
    return stdin, env


def test_the_corpus_is_large_and_names_are_unique():
    assert len(ROWS) >= 200, len(ROWS)
    assert len({c.id for c in ROWS + QUIET}) == len(ROWS) + len(QUIET)
    assert {c.plugin for c in ROWS} == set(PLUGINS)
    assert {c.command for c in ROWS} == {"ADD", "DEL", "CHECK", "GC", "STATUS"}


@pytest.mark.parametrize("case", ROWS, ids=[c.id for c in ROWS])
def test_hostile(case: Case, world: World, bin_dir: Path):
    stdin, env = prepare(case, world, bin_dir)
    host_before, cont_before = netns_state(world.host_ns), netns_state(world.container_ns)
    files_before = files_state(world.state)

    out = call(case.plugin, case.command, world, stdin, env, bin_dir)

    said = f"rc={out.returncode}\nstdout={out.stdout!r}\nstderr={out.stderr[-2000:]!r}"
    assert out.returncode != 0, said
    text = out.stdout.decode().strip()
    assert text and "\n" not in text, "stdout must be exactly one JSON object\n" + said
    answer = json.loads(text)
    assert isinstance(answer, dict) and set(answer) <= {"cniVersion", "code", "msg", "details"}, said
    assert b"Traceback" not in out.stdout + out.stderr, said
    assert answer["code"] == case.code, said
    message = f"{answer['msg']} {answer.get('details', '')}"
    for needle in case.needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    changed = differences(host_before, netns_state(world.host_ns))
    assert not changed, "the host namespace changed:\n" + "\n".join(changed)
    changed = differences(cont_before, netns_state(world.container_ns))
    assert not changed, "the container namespace changed:\n" + "\n".join(changed)
    assert files_state(world.state) == files_before, "files under the state directory changed"


@pytest.mark.parametrize("case", QUIET, ids=[c.id for c in QUIET])
def test_quiet(case: Quiet, world: World, bin_dir: Path):
    """DEL whose CNI_NETNS is no namespace: success at once, the attachment's address released."""
    stdin, env = prepare(case, world, bin_dir)
    mine = None
    if case.plugin == "bridge":
        world.network_dir.mkdir(parents=True, exist_ok=True)
        mine = world.network_dir / (world.subnet.rsplit(".", 1)[0] + ".7")
        mine.write_bytes(world.container_id.encode() + b"\r\neth0")
    host_before, cont_before = netns_state(world.host_ns), netns_state(world.container_ns)
    out = call(case.plugin, case.command, world, stdin, env, bin_dir)
    said = f"rc={out.returncode}\nstdout={out.stdout!r}\nstderr={out.stderr[-2000:]!r}"
    assert out.returncode == 0 and out.stdout.strip() == b"", said
    assert b"Traceback" not in out.stderr, said
    changed = differences(host_before, netns_state(world.host_ns))
    changed += differences(cont_before, netns_state(world.container_ns))
    assert not changed, "\n".join(changed)
    if mine is not None:
        assert not mine.exists(), "DEL did not release the attachment's address"
