"""`pycni status` and `pycni gc`: the runtime's truth against what the plugins left on the node.

status  shows every list of the conf dir (which one the runtime loads), each plugin's executable
        and STATUS answer, host-local's range use and reservations, and every attachment with its
        resources and verdict.
gc      asks the runtime (CRI ListPodSandbox) which sandboxes it holds, and runs the CNI GC verb of
        every list through its plugins, in list order, with `cni.dev/valid-attachments`, as libcni
        does; each plugin frees its own leftovers. It refuses to run when the runtime cannot be
        asked. What it freed is the difference of the node's state before and after.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from cni.cri.client import DEFAULT_ENDPOINT, DEFAULT_TIMEOUT, RuntimeUnavailable, Sandbox, list_sandboxes

from . import attachments, invoke, node, render
from .netconf import NetList, load_dir, plugin_config

DEFAULT_CONF_DIR = "/etc/cni/net.d"
DEFAULT_BIN_DIR = "/opt/cni/bin"
DEFAULT_GRACE = 300.0
GC_VERSION = "1.1.0"  # the version that defines GC; older lists are collected as it
JSON_VERSION = 1
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


def _plugins_json(lst: NetList, bin_dir: str, ask_status: bool) -> list[dict[str, Any]]:
    out = []
    for plugin in lst.plugins:
        exe = invoke.find(bin_dir, plugin["type"])
        entry: dict[str, Any] = {"type": plugin["type"], "executable": exe, "status": None}
        if exe is not None and ask_status:
            answer = invoke.run(exe, "STATUS", plugin_config(lst, plugin, GC_VERSION), bin_dir)
            entry["status"] = answer.to_json()
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
                                 "note": None, "plugins": [], "hostLocal": [], "attachments": []}
        networks.append(entry)
        if lst.error:
            continue
        entry["note"] = _version_note(lst)
        entry["disableGC"] = lst.disable_gc
        entry["plugins"] = _plugins_json(lst, bin_dir, ask_status=True)
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
    return {"version": JSON_VERSION, "confDir": conf_dir, "binDir": bin_dir, "graceSeconds": grace,
            "runtime": _runtime_json(endpoint, sandboxes, error), "networks": networks,
            "unownedIfbs": attachments.unowned_ifbs(names, state), "errors": state.errors}


# ---- gc ------------------------------------------------------------------------------------------------
def _collect(lst: NetList, bin_dir: str, valid: list[dict[str, str]],
             ) -> tuple[list[str], list[dict[str, Any]]]:
    """Run GC through every plugin of the list, in order: (notes, errors)."""
    notes, errors = [], []
    extra = {"cni.dev/valid-attachments": valid, "cni.dev/attachments": valid}  # libcni sends both
    for plugin in lst.plugins:
        exe = invoke.find(bin_dir, plugin["type"])
        if exe is None:
            errors.append({"plugin": plugin["type"], "code": None, "msg": f"not found in {bin_dir}"})
            continue
        answer = invoke.run(exe, "GC", plugin_config(lst, plugin, GC_VERSION, extra), bin_dir)
        if answer.ok:
            continue
        if answer.code == 1:  # an older plugin that does not speak 1.1.0 has no GC to run
            notes.append(f"{plugin['type']}: does not speak {GC_VERSION}, so it has no GC ({answer.msg})")
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
                              "graceSeconds": grace, "dryRun": dry_run,
                              "runtime": _runtime_json(endpoint, sandboxes, error), "networks": []}
    if sandboxes is None:
        report["error"] = f"nothing was collected: {error}"
        return EXIT_RUNTIME, report
    ids = {s.id for s in sandboxes}
    failed = False
    for lst in lists:
        entry: dict[str, Any] = {"file": lst.file, "name": lst.name or None,
                                 "cniVersion": lst.version or None, "skipped": None, "note": None,
                                 "notes": [], "freed": [], "kept": 0,
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
        before = attachments.build(lst.name, node.read([lst]))
        attachments.judge(before, ids, now, grace)
        entry["kept"] = sum(1 for a in before if a.verdict != "leaked")
        entry["validAttachments"] = len(valid := attachments.valid_attachments(before, ids))
        if dry_run:
            entry["freed"] = [dict(a.to_json(now), freed=sorted(a.resources()))
                              for a in before if a.verdict == "leaked"]
            continue
        entry["notes"], entry["errors"] = _collect(lst, bin_dir, valid)
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
    if opts.json:
        sys.stdout.write(json.dumps(report, indent=2) + "\n")
    else:
        sys.stdout.write(text)
    if code == EXIT_RUNTIME:
        sys.stderr.write(f"pycni gc: {report['error']}\n")
    return code
