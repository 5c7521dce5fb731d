"""`pycni status` and `pycni gc`: the runtime's truth against what the plugins left on the node.

status  shows every list of the conf dir (which one the runtime loads), each plugin's executable
        and STATUS answer, host-local's range use and reservations, and every attachment with its
        resources and verdict.
gc      asks the runtime (CRI ListPodSandbox) which sandboxes it holds, then per list does what
        libcni's GCNetworkList does: a DEL (reverse order, from libcni's result cache) of every
        cached attachment that is not valid, then the CNI GC verb through every plugin, in list
        order, with `cni.dev/valid-attachments`; each plugin frees its own leftovers (so do the
        reference plugins' DELs, e.g. portmap's, whose GC does nothing). It refuses to run when
        the runtime cannot be asked. What it freed is the difference of the state before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from cni.contract.versions import at_least
from cni.cri.client import DEFAULT_ENDPOINT, DEFAULT_TIMEOUT, RuntimeUnavailable, Sandbox, list_sandboxes

from . import attachments, invoke, node, render
from .netconf import NetList, load_dir, plugin_config

DEFAULT_CONF_DIR = "/etc/cni/net.d"
DEFAULT_BIN_DIR = "/opt/cni/bin"
DEFAULT_GRACE = 300.0
GC_VERSION = "1.1.0"  # the version that defines GC; older lists are collected as it
JSON_VERSION = 1
GC_GRACE_KEY = "pycni.dev/gc-grace-seconds"  # read by pycni's host-local (ipam.hostlocal.GC_GRACE_KEY)
# Exit statuses of `pycni gc`.
EXIT_OK, EXIT_RUNTIME, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3


def _parser(command: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=f"pycni {command}", description=(
        "Show the node's networks, allocations and leftovers." if command == "status" else
        "Free what attachments the runtime no longer holds left behind (CNI GC)."))
    p.add_argument("--conf-dir", default=DEFAULT_CONF_DIR,
                   help=f"network config lists (default {DEFAULT_CONF_DIR})")
    p.add_argument("--bin-dir", default=DEFAULT_BIN_DIR,
                   help=f"plugin executables (default {DEFAULT_BIN_DIR})")
    p.add_argument("--cri-endpoint", default=DEFAULT_ENDPOINT,
                   help=f"the runtime's CRI socket (default {DEFAULT_ENDPOINT})")
    p.add_argument("--grace", type=float, default=DEFAULT_GRACE, metavar="SECONDS",
                   help=f"keep attachments not yet listed but newer than this (default {DEFAULT_GRACE:g})")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                   help=f"how long to wait for the runtime's answer (default {DEFAULT_TIMEOUT:g})")
    if command == "gc":
        p.add_argument("--dry-run", action="store_true", help="list what would be freed, change nothing")
    p.add_argument("--json", action="store_true", help="print one JSON document (see docs)")
    return p


def _runtime(endpoint: str, timeout: float) -> tuple[list[Sandbox] | None, str]:
    try:
        return list_sandboxes(endpoint, timeout), ""
    except RuntimeUnavailable as e:
        return None, str(e)


def _runtime_json(endpoint: str, sandboxes: list[Sandbox] | None, error: str) -> dict[str, Any]:
    return {"endpoint": endpoint, "reachable": sandboxes is not None, "error": error or None,
            "sandboxes": None if sandboxes is None else [
                {"id": s.id, "name": s.name, "namespace": s.namespace, "state": s.state} for s in sandboxes]}


def _speaks_gc(exe: str, bin_dir: str) -> tuple[bool, str]:
    """Whether the plugin speaks the version of STATUS and GC; if not, a note saying so. (An older
    plugin, e.g. Debian's reference 1.1.1, would answer them with an unrelated error.)"""
    versions = invoke.supported_versions(exe, bin_dir)
    if versions is None:
        return False, "gives no VERSION answer"
    if GC_VERSION not in versions:
        return False, f"speaks CNI up to {versions[-1] if versions else '?'}: no STATUS or GC"
    return True, ""


def _plugins_json(lst: NetList, bin_dir: str) -> list[dict[str, Any]]:
    """Each plugin's executable, and its STATUS answer (None when it has no STATUS; see note)."""
    out = []
    for plugin in lst.plugins:
        exe = invoke.find(bin_dir, plugin["type"])
        entry: dict[str, Any] = {"type": plugin["type"], "executable": exe, "status": None, "note": None}
        if exe is not None:
            speaks, entry["note"] = _speaks_gc(exe, bin_dir)
            if speaks:
                answer = invoke.run(exe, "STATUS", plugin_config(lst, plugin, GC_VERSION), bin_dir)
                entry["status"] = answer.to_json()
            entry["note"] = entry["note"] or None
        out.append(entry)
    return out


def _version_note(lst: NetList) -> str | None:
    if lst.version == GC_VERSION:
        return None
    return (f"written for cniVersion {lst.version}; STATUS and GC run it as {GC_VERSION}, "
            "the version that defines them")


# ---- status ----------------------------------------------------------------------------------------
def status_report(conf_dir: str, bin_dir: str, endpoint: str, grace: float, timeout: float) -> dict[str, Any]:
    lists = load_dir(conf_dir)
    sandboxes, error = _runtime(endpoint, timeout)
    ids = None if sandboxes is None else {s.id for s in sandboxes}
    state = node.read(lists)
    now = time.time()
    networks = []
    for i, lst in enumerate(lists):
        entry: dict[str, Any] = {"file": lst.file, "usedByRuntime": i == 0, "name": lst.name or None,
                                 "cniVersion": lst.version or None, "error": lst.error or None,
                                 "note": None, "disableGC": lst.disable_gc, "plugins": [], "hostLocal": [],
                                 "attachments": []}
        networks.append(entry)
        if lst.error:
            continue
        entry["note"] = _version_note(lst)
        entry["plugins"] = _plugins_json(lst, bin_dir)
        atts = attachments.build(lst.name, state)
        attachments.judge(atts, ids, now, grace)
        verdict = {a.key(): a.verdict for a in atts}
        for hl in state.host_local:
            if hl.network != lst.name:
                continue
            entry["hostLocal"].append({
                "plugin": hl.plugin, "dataDir": hl.data_dir, "error": hl.error or None,
                "rangeSets": [{"ranges": u.ranges, "capacity": u.capacity, "used": u.used, "free": u.free}
                              for u in hl.range_sets],
                "reservations": [{"address": r.address, "containerID": r.container_id, "ifname": r.ifname,
                                  "ageSeconds": max(0, int(now - r.mtime)),
                                  "verdict": verdict.get((r.container_id, r.ifname), "unknown")}
                                 for r in hl.reservations]})
        entry["attachments"] = [a.to_json(now) for a in atts]
    names = [lst.name for lst in lists if not lst.error]
    from cni.warm.probe import probe

    return {"version": JSON_VERSION, "confDir": conf_dir, "binDir": bin_dir, "graceSeconds": grace,
            "runtime": _runtime_json(endpoint, sandboxes, error), "networks": networks,
            "unownedIfbs": attachments.unowned_ifbs(names, state), "errors": state.errors,
            "warm": probe()}


# ---- gc ------------------------------------------------------------------------------------------------
def _del_config(lst: NetList, plugin: dict[str, Any], entry: node.CacheEntry) -> dict[str, Any]:
    """A DEL's stdin for one plugin, as libcni builds it from the cache: the capabilities the
    plugin declares as runtimeConfig, and the cached result as prevResult (0.4.0 and later)."""
    conf = plugin_config(lst, plugin, lst.version)
    caps = plugin.get("capabilities") if isinstance(plugin.get("capabilities"), dict) else {}
    runtime = {k: v for k, v in entry.capability_args.items() if caps.get(k) is True}
    if runtime:
        conf["runtimeConfig"] = runtime
    if entry.result is not None and at_least(lst.version, "0.4.0"):
        conf["prevResult"] = entry.result
    return conf


def _delete_cached(lst: NetList, bin_dir: str, entry: node.CacheEntry) -> list[dict[str, Any]]:
    """libcni GC's first step for a stale cached attachment: a DEL through the list, in reverse
    order; the cache entry goes once every plugin succeeded. Returns the errors."""
    netns = entry.netns if entry.netns and os.path.exists(entry.netns) else ""  # gone after a reboot
    args = ";".join(f"{a[0]}={a[1]}" for a in entry.cni_args if isinstance(a, list) and len(a) == 2)
    errors = []
    for plugin in reversed(lst.plugins):
        exe = invoke.find(bin_dir, plugin["type"])
        if exe is None:
            errors.append({"plugin": plugin["type"], "code": None, "msg": f"not found in {bin_dir}"})
            continue
        answer = invoke.run(exe, "DEL", _del_config(lst, plugin, entry), bin_dir,
                            container_id=entry.container_id, netns=netns, ifname=entry.ifname, cni_args=args)
        if not answer.ok:
            errors.append({"plugin": plugin["type"], "code": answer.code,
                           "msg": f"DEL of {entry.container_id} {entry.ifname}: {answer.msg}",
                           "details": answer.details or None})
    if not errors:
        try:
            os.unlink(entry.path)
        except FileNotFoundError:
            pass
        except OSError as e:
            errors.append({"plugin": "cache", "code": None, "msg": f"{entry.path}: {e.strerror}"})
    return errors


def _collect(lst: NetList, bin_dir: str, valid: list[dict[str, str]], grace: float,
             ) -> tuple[list[str], list[dict[str, Any]]]:
    """Run GC through every plugin of the list, in order: (notes, errors).

    Besides the valid attachments (under both keys, as libcni sends them) the plugins get the grace
    period: pycni's host-local keeps reservations younger than it, which closes the moment between
    reading the node and the GC call, in which a new sandbox's ADD could reserve an address.
    """
    notes, errors = [], []
    extra = {"cni.dev/valid-attachments": valid, "cni.dev/attachments": valid, GC_GRACE_KEY: grace}
    for plugin in lst.plugins:
        exe = invoke.find(bin_dir, plugin["type"])
        if exe is None:
            errors.append({"plugin": plugin["type"], "code": None, "msg": f"not found in {bin_dir}"})
            continue
        speaks, why = _speaks_gc(exe, bin_dir)
        if not speaks:
            notes.append(f"{plugin['type']}: skipped, it {why}")
            continue
        answer = invoke.run(exe, "GC", plugin_config(lst, plugin, GC_VERSION, extra), bin_dir)
        if answer.ok:
            continue
        errors.append({"plugin": plugin["type"], "code": answer.code, "msg": answer.msg,
                       "details": answer.details or None})
    return notes, errors


def _freed(before: list[attachments.Attachment], after: list[attachments.Attachment],
           now: float) -> list[dict[str, Any]]:
    """The attachments that lost resources between before and after, with what they lost."""
    left = {a.key(): a.resources() for a in after}
    out = []
    for att in before:
        gone = att.resources() - left.get(att.key(), set())
        if gone:
            entry = att.to_json(now)
            entry["freed"] = sorted(gone)
            out.append(entry)
    return out


def gc_report(conf_dir: str, bin_dir: str, endpoint: str, grace: float, timeout: float,
              dry_run: bool) -> tuple[int, dict[str, Any]]:
    lists = load_dir(conf_dir)
    sandboxes, error = _runtime(endpoint, timeout)
    report: dict[str, Any] = {"version": JSON_VERSION, "confDir": conf_dir, "binDir": bin_dir,
                              "graceSeconds": grace, "dryRun": dry_run, "error": None,
                              "runtime": _runtime_json(endpoint, sandboxes, error), "networks": []}
    if sandboxes is None:
        report["error"] = f"nothing was collected: {error}"
        return EXIT_RUNTIME, report
    ids = {s.id for s in sandboxes}
    failed = False
    for lst in lists:
        entry: dict[str, Any] = {"file": lst.file, "name": lst.name or None,
                                 "cniVersion": lst.version or None, "skipped": None, "note": None,
                                 "notes": [], "freed": [], "kept": 0, "validAttachments": None,
                                 "errors": []}
        report["networks"].append(entry)
        if lst.error:
            entry["skipped"] = f"the runtime cannot load it: {lst.error}"
            continue
        if lst.disable_gc:
            entry["skipped"] = "disableGC is set"
            continue
        entry["note"] = _version_note(lst)
        # Read right before collecting: a sandbox created since has its young reservation kept.
        now = time.time()
        state = node.read([lst])
        before = attachments.build(lst.name, state)
        attachments.judge(before, ids, now, grace)
        entry["kept"] = sum(1 for a in before if a.verdict != "leaked")
        entry["validAttachments"] = len(attachments.valid_attachments(before, ids))
        if dry_run:
            entry["freed"] = [dict(a.to_json(now), freed=sorted(a.resources()))
                              for a in before if a.verdict == "leaked"]
            continue
        leaked = {a.key() for a in before if a.verdict == "leaked"}
        for cached in state.cache:
            if cached.network == lst.name and (cached.container_id, cached.ifname) in leaked:
                entry["errors"] += _delete_cached(lst, bin_dir, cached)
        # Again after the DELs (which take a while): what appeared meanwhile is young, hence valid.
        fresh = attachments.build(lst.name, node.read([lst]))
        attachments.judge(fresh, ids, time.time(), grace)
        valid = attachments.valid_attachments(fresh, ids)
        entry["validAttachments"] = len(valid)
        notes, errors = _collect(lst, bin_dir, valid, grace)
        entry["notes"], entry["errors"] = notes, entry["errors"] + errors
        failed = failed or bool(entry["errors"])
        after = attachments.build(lst.name, node.read([lst]))
        entry["freed"] = _freed(before, after, now)
    return (EXIT_PARTIAL if failed else EXIT_OK), report


# ---- entry --------------------------------------------------------------------------------------------
def main(command: str, args: list[str]) -> int:
    parser = _parser(command)
    try:
        opts = parser.parse_args(args)
    except SystemExit as e:
        return EXIT_USAGE if e.code else 0
    if opts.grace < 0 or opts.timeout <= 0:
        sys.stderr.write(f"pycni {command}: --grace must be >= 0 and --timeout > 0\n")
        return EXIT_USAGE
    try:
        if command == "status":
            code, report = 0, status_report(opts.conf_dir, opts.bin_dir, opts.cri_endpoint, opts.grace,
                                            opts.timeout)
            text = render.status(report)
        else:
            code, report = gc_report(opts.conf_dir, opts.bin_dir, opts.cri_endpoint, opts.grace, opts.timeout,
                                     opts.dry_run)
            text = render.gc(report)
    except OSError as e:
        sys.stderr.write(f"pycni {command}: {e}\n")
        return EXIT_RUNTIME if command == "gc" else 1
    except Exception as e:  # a defect: one line, not a traceback, and a failing exit
        sys.stderr.write(f"pycni {command}: internal error: {type(e).__name__}: {e}\n")
        return 1
    if opts.json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        sys.stdout.write(text)
    if code == EXIT_RUNTIME:
        sys.stderr.write(f"pycni gc: {report['error']}\n")
    return code
