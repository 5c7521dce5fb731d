"""IPAM delegation: run the plugin named in `ipam.type` as the spec says.

The delegate is found on CNI_PATH and gets the same environment and the full config. When that
executable is this very bundle (our own host-local), it runs in-process through the same
contract code: identical parsing and answers, without a second process start. The contract does
not know the plugins: the entry point's registry arrives with the request (`local_plugins`).
"""

from __future__ import annotations

import sys

from cni import fastjson, sysapi
from cni.childenv import child_env

from .errors import INTERNAL, INVALID_CONFIG, TRY_AGAIN_LATER, CNIError
from .request import Request, decode, parse_env
from .result import Result

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

    from .plugin import Plugin


def find(plugin_type: str, path: list[str]) -> str:
    """The executable for a plugin type on CNI_PATH."""
    if not plugin_type or "/" in plugin_type or plugin_type in (".", ".."):
        raise CNIError(INVALID_CONFIG, f"invalid plugin type {plugin_type!r}")
    for directory in path:
        candidate = sysapi.join(directory, plugin_type)
        if sysapi.isfile(candidate) and sysapi.access(candidate, sysapi.X_OK):
            return candidate
    raise CNIError(INVALID_CONFIG, f'failed to find plugin "{plugin_type}" in path [{" ".join(path)}]',
                   "CNI_PATH's absolute directories are searched; others are skipped")


def find_ipam(plugin_type: str, req: Request) -> str:
    """The executable for `ipam.type`, which must be an IPAM plugin (code 7 otherwise).

    A type this bundle serves is IPAM only when its module says so (`IPAM = True`: host-local),
    whichever executable CNI_PATH holds under that name: `bridge` or `ptp` as IPAM would run an
    interface plugin on the config that names it, and through it again. Our own bundle under a
    name it serves no plugin as (`pycni`) is no IPAM either. A type of another suite (dhcp,
    static) is executed as found."""
    executable = find(plugin_type, req.path)
    module = None
    if req.local_plugins is not None:
        try:
            module = req.local_plugins(plugin_type)
        except KeyError:  # not a type of ours
            if _is_own_bundle(executable):
                raise _not_ipam(plugin_type, "it is the pycni command, not a plugin") from None
    if module is not None and not module.IPAM:
        raise _not_ipam(plugin_type, "it is an interface plugin")
    return executable


def _not_ipam(plugin_type: str, why: str) -> CNIError:
    return CNIError(INVALID_CONFIG, f'ipam.type "{plugin_type}" is not an IPAM plugin: {why}',
                    "name an IPAM plugin such as host-local, dhcp or static")


# A foreign delegate (dhcp waits for a lease, others call out to a server) gets this long, in
# seconds, before it is killed and the call fails with code 11: a runtime's call never hangs.
DEFAULT_TIMEOUT = 120.0
TIMEOUT_VAR = "PYCNI_DELEGATE_TIMEOUT"


def delegate_timeout(env: Mapping[str, str]) -> float:
    """The bound from TIMEOUT_VAR (a positive number of seconds), else DEFAULT_TIMEOUT."""
    try:
        value = float(env.get(TIMEOUT_VAR, ""))
    except ValueError:
        return DEFAULT_TIMEOUT
    return value if 0 < value < 86400 else DEFAULT_TIMEOUT


def _is_own_bundle(executable: str) -> bool:
    if not getattr(sys, "frozen", False):
        return False
    try:
        return sysapi.samefile(executable, sys.executable)  # stat(2) follows every symlink
    except OSError:
        return False


def ipam(req: Request, command: str | None = None) -> Result | None:
    """Run the IPAM plugin of req's config for `command` (default: req's own verb)."""
    section = req.config.get("ipam") or {}
    return run(section.get("type", ""), req, command or req.command)


def run(plugin_type: str, req: Request, command: str) -> Result | None:
    """Execute a delegate; its answer is a Result for ADD, None otherwise; its error is raised.

    The answer's addresses in canonical text are `cni.addrtext` values (no `ipaddress` on the
    call path); other text is read by `ipaddress`, so a caller reads only what both kinds answer."""
    executable = find_ipam(plugin_type, req)
    env = dict(req.env)
    env["CNI_COMMAND"] = command
    if req.local_plugins is not None and _is_own_bundle(executable):
        return _in_process(req.local_plugins(plugin_type), env, req)
    from cni import bounded  # only for a foreign delegate: our own runs in-process

    limit = delegate_timeout(req.env)
    try:
        returncode, output, _ = bounded.run([executable], req.stdin, child_env(env), limit,
                                            capture_stderr=False)
    except bounded.Expired:
        raise CNIError(TRY_AGAIN_LATER, f"IPAM plugin {plugin_type} did not answer {command} within "
                       f"{limit:g} s (killed)", f"{executable}; the bound is {TIMEOUT_VAR}") from None
    output = output.strip()
    if returncode != 0:
        raise _delegate_error(plugin_type, output)
    if command != "ADD":
        return None
    raw = decode(output, f"the answer of IPAM plugin {plugin_type}")
    return Result.from_json(raw, req.version, text_addresses=True)


def _in_process(plugin: Plugin, env: dict[str, str], req: Request) -> Result | None:
    from .dispatch import run_verb

    sub = parse_env(env)
    sub.local_plugins = req.local_plugins
    answer = run_verb(plugin, sub, lambda: req.stdin)
    if answer is None:
        return None
    # Exactly what executing it gives: the answer as printed in the config's version, read back
    # (a 0.1.0/0.2.0 result, for one, keeps only the routes of a family that has an address).
    return Result.from_json(answer.to_json(sub.version), sub.version, text_addresses=True)


def _delegate_error(plugin_type: str, output: bytes) -> CNIError:
    """Pass the delegate's error on with its own code."""
    try:
        raw = fastjson.loads(output)
        return CNIError(int(raw["code"]), str(raw.get("msg", "")), str(raw.get("details", "") or ""))
    except (ValueError, KeyError, TypeError):
        text = output.decode(errors="replace")[:500]
        return CNIError(INTERNAL, f"{plugin_type} failed", text or "no output")
