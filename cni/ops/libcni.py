"""libcni's semantics, once: the lists of a conf dir, what each plugin gets, a list run for a verb.

Followed from containernetworking/cni 1.x (`libcni/conf.go`, `libcni/api.go`):
- ConfFiles takes every `*.conf`, `*.conflist` and `*.json` of the directory (hidden files too,
  subdirectories never) and the runtime sorts them by name; containerd (max_conf_num=1) loads only
  the first. A `.conf`/`.json` file holds one plugin, which libcni wraps into a list.
- A plugin gets its own object with the list's `name` and `cniVersion` injected, `prevResult` when
  there is one and `runtimeConfig` holding the capability arguments it declares in `capabilities`.
- ADD runs the plugins in order, each with the previous one's result; CHECK in order and DEL in
  reverse, each with the attachment's cached result as `prevResult` (lists of 0.4.0 and later);
  GC and STATUS run every plugin in order without one.
- The environment is the caller's plus `CNI_COMMAND`, `CNI_CONTAINERID`, `CNI_NETNS`, `CNI_ARGS`,
  `CNI_IFNAME` and `CNI_PATH`; the executable is `<CNI_PATH>/<type>`.
`pycni status`/`gc` and the bench both use it; how a plugin process is started is the caller's
(`execute` below: a bounded run here, the bench's timed spawn there). Not on any plugin's path.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any, NamedTuple, Protocol

from cni.childenv import child_env
from cni.contract.versions import DEFAULT_WHEN_ABSENT, SUPPORTED, at_least, parse
from cni.safeopen import read_regular

EXTENSIONS = (".conf", ".conflist", ".json")
READ_LIMIT = 1 << 20
TIMEOUT = 60.0


# ---- loading a conf dir ---------------------------------------------------------------------------
class NetList(NamedTuple):
    """One file of the conf dir; `error` says why the runtime could not load it ("" when it can)."""

    file: str
    name: str
    version: str
    plugins: list[dict[str, Any]]
    disable_gc: bool
    error: str

    @property
    def types(self) -> tuple[str, ...]:
        return tuple(p["type"] for p in self.plugins)


def make_list(name: str, version: str, plugins: list[dict[str, Any]]) -> NetList:
    """A list built in memory (not read from a file)."""
    return NetList("", name, version, list(plugins), False, "")


def conf_files(names: list[str]) -> list[str]:
    """The config file names among a directory's entries, in the runtime's order."""
    return sorted(n for n in names if os.path.splitext(n)[1] in EXTENSIONS)


def _pick_version(raw: dict[str, Any]) -> str:
    """cniVersions (1.1.0): the highest one we speak; else cniVersion; else libcni's default."""
    versions = raw.get("cniVersions")
    if isinstance(versions, list):
        known = [v for v in versions if isinstance(v, str) and v in SUPPORTED]
        if known:
            return max(known, key=parse)
    version = raw.get("cniVersion")
    return version if isinstance(version, str) and version else DEFAULT_WHEN_ABSENT


def parse_list(file: str, data: bytes) -> NetList:
    """A file's content as a list (a single-plugin file is wrapped), or why it is not one."""
    def bad(why: str, name: str = "") -> NetList:
        return NetList(file, name, "", [], False, why)

    try:
        raw = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        return bad(f"not JSON: {e}")
    if not isinstance(raw, dict):
        return bad("not a JSON object")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        return bad("no network name")
    version = _pick_version(raw)
    if file.endswith(".conflist"):
        plugins = raw.get("plugins")
        if not isinstance(plugins, list) or not plugins:
            return bad("no plugins", name)
        if not all(isinstance(p, dict) and isinstance(p.get("type"), str) and p["type"] for p in plugins):
            return bad("a plugin without a type", name)
    else:
        if not isinstance(raw.get("type"), str) or not raw["type"]:
            return bad("network type not found (a list in a .conf file?)", name)
        plugins = [raw]
    return NetList(file, name, version, plugins, raw.get("disableGC") is True, "")


def load_dir(conf_dir: str) -> list[NetList]:
    """Every config file of conf_dir in the runtime's order; a file that cannot be read says so."""
    try:
        names = [e.name for e in os.scandir(conf_dir) if e.is_file()]
    except OSError as e:
        raise OSError(f"cannot read the CNI config directory {conf_dir}: {e.strerror}") from None
    out = []
    for name in conf_files(names):
        try:  # never a FIFO (it would hang the command) or a device
            data = read_regular(os.path.join(conf_dir, name), READ_LIMIT)
        except OSError as e:
            out.append(NetList(name, "", "", [], False, f"cannot read: {e.strerror}"))
            continue
        out.append(parse_list(name, data))
    return out


# ---- what one plugin gets -------------------------------------------------------------------------
class RuntimeConf(NamedTuple):
    """One attachment as the runtime names it (libcni's RuntimeConf)."""

    container_id: str = ""
    netns: str = ""
    ifname: str = ""
    cni_args: str = ""
    cap_args: dict[str, Any] | None = None


def plugin_config(lst: NetList, plugin: dict[str, Any], version: str, extra: dict[str, Any] | None = None,
                  ) -> dict[str, Any]:
    """A plugin's object with the list's name and the version injected (libcni's InjectConf), plus
    `extra` keys (GC's valid attachments)."""
    conf = dict(plugin)
    conf["name"] = lst.name
    conf["cniVersion"] = version
    conf.update(extra or {})
    return conf


def one_config(lst: NetList, plugin: dict[str, Any], prev: dict[str, Any] | None = None,
               cap_args: dict[str, Any] | None = None, version: str | None = None,
               extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The stdin of one plugin, as libcni's buildOneConfig and injectRuntimeConfig make it."""
    conf = plugin_config(lst, plugin, version or lst.version, extra)
    if prev is not None:
        conf["prevResult"] = prev
    declared = plugin.get("capabilities")
    caps: dict[str, Any] = declared if isinstance(declared, dict) else {}
    runtime = {k: v for k, v in (cap_args or {}).items() if caps.get(k) is True}
    if runtime:
        conf["runtimeConfig"] = runtime
    return conf


def cni_env(base: dict[str, str], verb: str, rt: RuntimeConf, bin_dir: str) -> dict[str, str]:
    """The caller's environment with the six CNI variables (empty ones too, as libcni exports them)."""
    env = dict(base)
    env.update(CNI_COMMAND=verb, CNI_CONTAINERID=rt.container_id, CNI_NETNS=rt.netns, CNI_ARGS=rt.cni_args,
               CNI_IFNAME=rt.ifname, CNI_PATH=bin_dir)
    return env


def find(bin_dir: str, plugin_type: str) -> str | None:
    """The executable of a plugin type in bin_dir (the plugins' own delegate lookup), or None."""
    from cni.contract.delegate import find as lookup
    from cni.contract.errors import CNIError

    try:
        return lookup(plugin_type, [bin_dir])
    except CNIError:
        return None


# ---- running ----------------------------------------------------------------------------------------
class Answer(NamedTuple):
    """A plugin's answer: ok (with its stdout), or the CNI error it printed (code, msg, details).
    `seconds` and `maxrss_kib` are filled by an executor that measures them."""

    ok: bool
    code: int | None
    msg: str
    details: str
    stdout: bytes = b""
    seconds: float = 0.0
    maxrss_kib: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "code": self.code, "msg": self.msg or None, "details": self.details or None}


class Execute(Protocol):
    def __call__(self, executable: str, env: dict[str, str], stdin: bytes) -> Answer: ...


def read_answer(returncode: int, stdout: bytes, stderr: bytes) -> Answer:
    """What a finished plugin process said: ok, its CNI error, or what it printed instead."""
    if returncode == 0:
        return Answer(True, None, "", "", stdout)
    out = stdout.decode(errors="replace").strip()
    try:
        raw = json.loads(out)
        return Answer(False, int(raw["code"]), str(raw.get("msg", "")), str(raw.get("details") or ""), stdout)
    except (ValueError, KeyError, TypeError):
        err = stderr.decode(errors="replace").strip()
        return Answer(False, None, f"exited {returncode}", (out or err)[-500:], stdout)


def execute(executable: str, env: dict[str, str], stdin: bytes, timeout: float = TIMEOUT) -> Answer:
    """Run one plugin process, bounded; a crash, a timeout or unreadable output is an error answer."""
    try:
        proc = subprocess.run([executable], input=stdin, env=child_env(env), capture_output=True,
                              timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return Answer(False, None, f"no answer within {timeout:g}s", "")
    except OSError as e:
        return Answer(False, None, f"cannot execute {executable}: {e.strerror}", "")
    return read_answer(proc.returncode, proc.stdout, proc.stderr)


def supported_versions(executable: str, bin_dir: str, timeout: float = TIMEOUT) -> list[str] | None:
    """The plugin's VERSION answer (`supportedVersions`), or None when it gives none."""
    env = cni_env(dict(os.environ), "VERSION", RuntimeConf(), bin_dir)
    answer = execute(executable, env, b'{"cniVersion":"1.1.0"}', timeout)
    try:
        versions = json.loads(answer.stdout).get("supportedVersions") if answer.ok else None
    except (ValueError, AttributeError):
        return None
    return [v for v in versions if isinstance(v, str)] if isinstance(versions, list) else None


def run_plugin(verb: str, lst: NetList, plugin: dict[str, Any], rt: RuntimeConf, bin_dir: str,
               run: Execute = execute, prev: dict[str, Any] | None = None, version: str | None = None,
               extra: dict[str, Any] | None = None, base_env: dict[str, str] | None = None) -> Answer:
    """One plugin of a list for one verb; a plugin not in bin_dir is an error answer."""
    exe = find(bin_dir, plugin["type"])
    if exe is None:
        return Answer(False, None, f"not found in {bin_dir}", "")
    stdin = json.dumps(one_config(lst, plugin, prev, rt.cap_args, version, extra)).encode()
    env = cni_env(dict(os.environ) if base_env is None else base_env, verb, rt, bin_dir)
    return run(exe, env, stdin)


class ListRun:
    """A list run for one verb: each plugin's answer in the order run, and ADD's final result."""

    __slots__ = ("answers", "result", "verb")

    def __init__(self, verb: str) -> None:
        self.verb = verb
        self.answers: list[tuple[str, Answer]] = []
        self.result: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return all(a.ok for _, a in self.answers)


def run_list(verb: str, lst: NetList, rt: RuntimeConf, bin_dir: str, run: Execute = execute,
             cached: dict[str, Any] | None = None, keep_going: bool = False,
             base_env: dict[str, str] | None = None) -> ListRun:
    """ADD, CHECK or DEL through the list as libcni runs it (see the module's description); the
    run stops at the first failing plugin unless `keep_going` (every plugin tried, as GC does)."""
    plugins = list(reversed(lst.plugins)) if verb == "DEL" else lst.plugins
    prev = cached if verb != "ADD" and at_least(lst.version, "0.4.0") else None
    out = ListRun(verb)
    for plugin in plugins:
        answer = run_plugin(verb, lst, plugin, rt, bin_dir, run, prev, base_env=base_env)
        if answer.ok and verb == "ADD":
            try:
                prev = json.loads(answer.stdout)
            except ValueError:
                answer = answer._replace(ok=False, msg=f"printed no JSON result: {answer.stdout[:200]!r}")
        out.answers.append((plugin["type"], answer))
        if not answer.ok and not keep_going:
            return out
    if verb == "ADD":
        out.result = prev
    return out
