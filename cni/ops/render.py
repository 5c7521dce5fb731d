"""The tables people read: `pycni status` and `pycni gc` output from their JSON reports."""

from __future__ import annotations

from typing import Any

ID_WIDTH = 12


def _short(cid: str) -> str:
    return cid if len(cid) <= ID_WIDTH + 1 else cid[:ID_WIDTH] + "…"


def _age(seconds: int | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _table(rows: list[list[str]], indent: str = "    ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def _runtime_line(rt: dict[str, Any]) -> str:
    if not rt["reachable"]:
        return f"runtime  {rt['endpoint']}: NOT REACHABLE: {rt['error']}"
    boxes = rt["sandboxes"]
    ready = sum(1 for s in boxes if s["state"] == "ready")
    return f"runtime  {rt['endpoint']}: {len(boxes)} sandboxes ({ready} ready)"


def _status_answer(plugin: dict[str, Any]) -> str:
    st = plugin["status"]
    if plugin["executable"] is None:
        return "-"
    if st is None:
        return plugin["note"] or "-"
    if st["ok"]:
        return "ready"
    code = f"code {st['code']}" if st["code"] is not None else "failed"
    return f"{code}: {st['msg']}"


def _resources(att: dict[str, Any]) -> str:
    parts = [*att["addresses"], *(f"masq {c}" for c in att["ipMasq"]), *(f"ifb {i}" for i in att["ifbs"]),
             *(f"portmap {c}" for c in att["portmap"])]
    if att["cached"]:
        parts.append("cached")
    return ", ".join(parts) or "-"


def _warm_line(warm: dict[str, Any]) -> str:
    if not warm["running"]:
        return f"warm process: {warm['socket']}: {warm['error']}; plugin calls run cold"
    bundle = ("serves this bundle" if warm["bundleMatches"] else
              "serves ANOTHER bundle (calls run cold): restart pycni-warm.service")
    memory = (f", RSS {warm['rssKiB'] / 1024:.1f} MiB (PSS {warm['pssKiB'] / 1024:.1f} MiB)"
              if warm["rssKiB"] is not None and warm["pssKiB"] is not None else "")
    return f"warm process: running, pid {warm['pid']}, {bundle} (build {warm['buildId']}){memory}"


def status(report: dict[str, Any]) -> str:
    out = [f"conf dir {report['confDir']}  bin dir {report['binDir']}  grace {report['graceSeconds']:g}s",
           _runtime_line(report["runtime"])]
    if report.get("warm"):
        out.append(_warm_line(report["warm"]))
    if not report["networks"]:
        out.append("no network config lists: the runtime's network is not ready")
    for net in report["networks"]:
        out.append("")
        used = "  <- the runtime's network (first file)" if net["usedByRuntime"] else ""
        if net["error"]:
            out.append(f"{net['file']}: INVALID: {net['error']}{used}")
            continue
        out.append(f"{net['file']}: network {net['name']}, cniVersion {net['cniVersion']}{used}")
        if net["note"]:
            out.append(f"  note: {net['note']}")
        rows = [["PLUGIN", "EXECUTABLE", "STATUS"]]
        rows += [[p["type"], p["executable"] or "NOT FOUND", _status_answer(p)] for p in net["plugins"]]
        out += ["  plugins:", *_table(rows)]
        for hl in net["hostLocal"]:
            out.append(f"  {hl['plugin']} ipam host-local, {hl['dataDir']}/{net['name']}:")
            if hl["error"]:
                out.append(f"    ERROR: {hl['error']}")
                continue
            for i, rs in enumerate(hl["rangeSets"]):
                out.append(f"    range set {i}: {rs['ranges']}  capacity {rs['capacity']}  "
                           f"used {rs['used']}  free {rs['free']}")
            if hl["reservations"]:
                rows = [["ADDRESS", "CONTAINER", "IFNAME", "AGE", "VERDICT"]]
                rows += [[r["address"], _short(r["containerID"]), r["ifname"] or "-", _age(r["ageSeconds"]),
                          r["verdict"]] for r in hl["reservations"]]
                out += _table(rows)
        if net["attachments"]:
            rows = [["CONTAINER", "IFNAME", "AGE", "VERDICT", "HOLDS"]]
            rows += [[_short(a["containerID"]), a["ifname"] or "-", _age(a["ageSeconds"]), a["verdict"],
                      _resources(a)] for a in net["attachments"]]
            out += ["  attachments:", *_table(rows)]
        else:
            out.append("  attachments: none")
    if report["unownedIfbs"]:
        out += ["", "IFBs no attachment of these lists accounts for: " + ", ".join(report["unownedIfbs"])]
    for err in report["errors"]:
        out.append(f"warning: {err}")
    return "\n".join(out) + "\n"


def gc(report: dict[str, Any]) -> str:
    out = [_runtime_line(report["runtime"])]
    if report.get("error"):  # said on stderr too
        out.append("nothing was collected")
        return "\n".join(out) + "\n"
    verb = "would free" if report["dryRun"] else "freed"
    for net in report["networks"]:
        out.append("")
        head = f"{net['file']}: network {net['name'] or '?'}"
        if net["skipped"]:
            out.append(f"{head}: skipped, {net['skipped']}")
            continue
        out.append(f"{head}: {verb} {len(net['freed'])} attachment(s), kept {net['kept']}")
        if net["note"]:
            out.append(f"  note: {net['note']}")
        for att in net["freed"]:
            age = _age(att["ageSeconds"])
            out.append(f"  {verb} {att['containerID']} {att['ifname'] or '-'} (age {age}): "
                       + ", ".join(att["freed"]))
        for note in net["notes"]:
            out.append(f"  note: {note}")
        for err in net["errors"]:
            code = f" (code {err['code']})" if err["code"] is not None else ""
            details = f": {err['details']}" if err.get("details") else ""
            out.append(f"  ERROR {err['plugin']}{code}: {err['msg']}{details}")
    return "\n".join(out) + "\n"
