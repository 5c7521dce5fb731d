"""Verb dispatch: one call from environment and stdin to a printed answer and an exit code.

`serve` is the whole contract as a function (it raises CNIError); `main` is the process edge:
it owns stdout, so a stray print or a traceback can never corrupt the JSON a runtime parses.
"""

from __future__ import annotations

import sys

from cni import fastjson, sysapi

from . import schema, versions
from .errors import INTERNAL, INVALID_NETNS, UNKNOWN_CONTAINER, CNIError, failed
from .request import MAX_STDIN, Request, finish, parse_env, parse_stdin
from .result import Result

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import Any, TextIO

    from .plugin import Plugin

# Verb -> the plugin's function for it (read by name: a plugin is a module, cni/contract/plugin.py).
HANDLERS: dict[str, Callable[[Plugin], Callable[[Request], Result | None]]] = {
    "ADD": lambda p: p.add, "DEL": lambda p: p.delete, "CHECK": lambda p: p.check,
    "STATUS": lambda p: p.status, "GC": lambda p: p.gc,
}


def version_info(plugin: Plugin) -> dict[str, Any]:
    """The VERSION answer libcni's version check decodes."""
    return {"cniVersion": versions.CURRENT, "supportedVersions": list(plugin.VERSIONS)}


def prepare(plugin: Plugin, req: Request, read_stdin: Callable[[], bytes]) -> None:
    """Validate the stdin config for the plugin, before any of its code runs."""
    env = req.env
    config = parse_stdin(req, read_stdin())
    versions.require_verb(req.command, req.version, plugin.VERSIONS)
    versions.require_supported(req.version, plugin.VERSIONS)
    config = schema.validate(config, plugin.SCHEMA)
    as_text = plugin.prev_result_as_text  # the plugin only passes the addresses on
    finish(req, config, plugin.CNI_ARGS_KEYS,
           as_text is not None and as_text(req.command, config), plugin.READS_PREV_RESULT)
    if req.command == "GC":
        req.valid_attachments()  # the whole list checked before any plugin removes anything
    if plugin.NEEDS_NETNS:
        if req.command in ("ADD", "CHECK"):
            check_netns(req.netns, env)
        elif req.command == "DEL" and req.netns:
            # skel checks after DEL ran; checking first keeps a DEL off the host's own devices
            check_netns(req.netns, env, missing_ok=True)


def check_netns(path: str, env: Mapping[str, str], missing_ok: bool = False) -> None:
    """The container's netns must exist and must not be the plugin's own (skel's code 8)."""
    from cni.net import netns  # only plugins that need a namespace pay for it, and they import it anyway

    try:
        sysapi.stat(path)
    except OSError as e:
        if missing_ok:
            return
        raise CNIError(UNKNOWN_CONTAINER, f"failed to open netns {path!r}: {e.strerror}",
                       "CNI_NETNS names no network namespace") from None
    if not netns.is_netns(path):
        if missing_ok:
            return
        raise CNIError(UNKNOWN_CONTAINER, f"failed to open netns {path!r}: not a network namespace",
                       "CNI_NETNS names no network namespace")
    if env.get("CNI_NETNS_OVERRIDE", "").lower() in ("1", "true"):  # skel: "1" or "true", any case
        return
    if netns.same_as_current(path):
        raise CNIError(INVALID_NETNS, "plugin's netns and netns from CNI_NETNS should not be the same",
                       f"CNI_NETNS={path}")


def run_verb(plugin: Plugin, req: Request, read_stdin: Callable[[], bytes]) -> Result | None:
    """Validate the config and run the plugin's function for req's verb (not VERSION)."""
    prepare(plugin, req, read_stdin)
    answer = HANDLERS[req.command](plugin)(req)
    return answer if isinstance(answer, Result) else None


def serve(plugin: Plugin, req: Request, read_stdin: Callable[[], bytes]) -> dict[str, Any] | None:
    """Run one verb; returns the JSON to print, or None for an empty answer (DEL, CHECK, GC, STATUS)."""
    if req.command == "VERSION":
        return version_info(plugin)
    answer = run_verb(plugin, req, read_stdin)
    return answer.to_json(req.version) if answer is not None else None


def about(plugin_type: str, load: Callable[[str], Plugin]) -> str:
    """The description printed when started with no CNI_COMMAND (as skel prints its about text)."""
    try:
        supported = load(plugin_type).VERSIONS
    except Exception:  # the description must print whatever happens
        supported = versions.SUPPORTED
    from cni.version import VERSION

    return f"CNI {plugin_type} plugin (pycni {VERSION}), spec versions {', '.join(supported)}"


def main(plugin_type: str, load: Callable[[str], Plugin], env: Mapping[str, str] | None = None) -> int:
    """Process entry: print the answer or the error JSON on stdout, logs on stderr.

    `load` is the entry point's registry: it gives the plugin for `plugin_type`, and any delegate
    of our own bundle is run in-process through it.
    """
    env = sysapi.environ if env is None else env
    out: TextIO = sys.stdout
    if not env.get("CNI_COMMAND"):
        sys.stderr.write(about(plugin_type, load) + "\n")
        return 0
    sys.stdout = sys.stderr  # anything printed by accident goes to the log, not to the runtime
    req: Request | None = None
    try:
        req = parse_env(env)
        req.local_plugins = load
        answer = serve(load(plugin_type), req, lambda: sys.stdin.buffer.read(MAX_STDIN + 1))
        if answer is not None:
            _emit(out, answer)
        return 0
    except CNIError as e:
        _emit(out, e.to_json(_error_version(req)))
        return 1
    except Exception as e:
        if getattr(e, "overran_bound", False):  # a lock or a tool past its bound: 11, not a defect
            _emit(out, failed(e).to_json(_error_version(req)))
            return 1
        import traceback  # only on this path: its import is start-up every call would pay

        traceback.print_exc(file=sys.stderr)
        _emit(out, CNIError(INTERNAL, f"{type(e).__name__}: {e}").to_json(_error_version(req)))
        return 1
    finally:
        sys.stdout = out


def _error_version(req: Request | None) -> str:
    """Errors speak the config's version when it is one we know, else ours."""
    if req is not None and req.version in versions.SUPPORTED:
        return req.version
    return versions.CURRENT


def _emit(out: TextIO, payload: dict[str, Any]) -> None:
    out.write(fastjson.dumps(payload) + "\n")
    out.flush()
