"""Test bench helpers for pycni: cnitool, direct plugin runs, namespaces and kernel read-back."""

from .cnitool import Cnitool, build_cnitool
from .kernel import (
    HostSnapshot,
    NetNS,
    add_netns,
    addresses,
    assert_host_unchanged,
    bridge_json,
    del_netns,
    delete_link,
    host_changes,
    host_snapshot,
    ip_json,
    is_root,
    link,
    link_exists,
    netns_exists,
    ns_argv,
    ns_exec,
    tc_json,
)
from .names import unique_ifname, unique_name, unique_subnet_v4, unique_subnet_v6
from .netconf import conflist, write_netconf
from .outcome import Outcome, parse_json
from .plugin import find_plugin, run_plugin

__all__ = [
    "Cnitool", "HostSnapshot", "NetNS", "Outcome", "add_netns", "addresses", "assert_host_unchanged",
    "bridge_json", "build_cnitool", "conflist", "del_netns", "delete_link", "find_plugin",
    "host_changes", "host_snapshot", "ip_json", "is_root", "link", "link_exists", "netns_exists",
    "ns_argv", "ns_exec",
    "parse_json", "run_plugin", "tc_json", "unique_ifname", "unique_name", "unique_subnet_v4",
    "unique_subnet_v6", "write_netconf",
]
