"""The request: the CNI_* environment and the stdin config, checked as skel and libcni check them."""

from __future__ import annotations

import sys

from cni import fastjson
from cni.record import Record

from . import versions
from .args import parse_cni_args
from .errors import DECODING_FAILURE, INVALID_CONFIG, INVALID_ENVIRONMENT, CNIError
from .result import Result

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from typing import Any

    from .plugin import Plugin

VERBS = ("ADD", "DEL", "CHECK", "STATUS", "GC", "VERSION")

# Which variables must carry a value, per verb (the spec's table; CNI_PATH as skel requires it).
REQUIRED_ENV: dict[str, tuple[str, ...]] = {
    "ADD": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "DEL": ("CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"),
    "CHECK": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_PATH"),
    "STATUS": ("CNI_PATH",),
    "GC": ("CNI_PATH",),
    "VERSION": (),
}

# libcni's rules, checked without `re` (whose import every call would pay for).
_NAME_PATTERN = "^[a-zA-Z0-9][a-zA-Z0-9_.\\-]*$"
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_NAME_CHARS = _ALNUM | frozenset("_.-")


def _is_name(value: str) -> bool:
    r"""libcni's ^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$ (ASCII only, nothing after the last character)."""
    return bool(value) and value[0] in _ALNUM and all(c in _NAME_CHARS for c in value)


def check_container_id(value: str) -> str | None:
    """Why a container ID is refused, or None (libcni's rule)."""
    if not _is_name(value):
        return f"invalid characters in container ID {value!r}: must match {_NAME_PATTERN}"
    return None


def check_ifname(value: str, creating: bool = False) -> str | None:
    """Why an interface name is refused, or None (libcni's rule: 1-15 bytes, no / : or space).

    For ADD and CHECK (`creating`) also: no '%' (the kernel expands `%d` in a new link's name, so
    the link made would not be the one named) and UTF-8 only (the name goes into JSON answers).
    DEL takes any name the kernel takes, so it still releases what an ADD of the reference
    plugins reserved under such a name."""
    if len(value.encode("utf-8", "surrogateescape")) > 15:  # IFNAMSIZ counts bytes, as Go's len() does
        return f"interface name {value!r} is too long: at most 15 bytes"
    if value in (".", ".."):
        return f"interface name {value!r} is not allowed"
    if any(c in "/:" or c.isspace() for c in value):
        return f"interface name {value!r} contains '/', ':' or whitespace"
    if creating and "%" in value:
        return f"interface name {value!r} contains '%', which the kernel expands into a number"
    if creating and any("\udc80" <= c <= "\udcff" for c in value):
        return f"interface name {value!r} is not valid UTF-8"
    return None


def check_network_name(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return "missing network name"
    if not _is_name(value):
        return f"invalid characters in network name {value!r}: must match {_NAME_PATTERN}"
    return None


class Request(Record):
    """One plugin call, parsed and validated."""

    __slots__ = ("command", "container_id", "netns", "ifname", "args", "path", "config", "version",
                 "prev_result", "stdin", "env", "local_plugins")
    _defaults = {"container_id": "", "netns": "", "ifname": "", "args": dict, "path": list, "config": dict,
                 "version": versions.CURRENT, "prev_result": None, "stdin": b"", "env": dict,
                 "local_plugins": None}
    if TYPE_CHECKING:
        command: str
        container_id: str
        netns: str
        ifname: str
        args: dict[str, str]
        path: list[str]
        config: dict[str, Any]
        version: str
        prev_result: Result | None
        stdin: bytes
        env: Mapping[str, str]
        # The entry point's registry (type -> plugin module): what a delegate of our own bundle
        # runs in-process. None: every delegate is executed.
        local_plugins: Callable[[str], Plugin] | None

    @property
    def name(self) -> str:
        return self.config.get("name", "")

    def valid_attachments(self) -> set[tuple[str, str]]:
        """GC's list of live attachments; absent means none is live (as libcni's cnitool sends).

        Anything but a list of {"containerID": string, "ifname": string} objects is code 7: read
        leniently, a malformed list would mean "nothing is valid" and GC would remove everything.
        """
        return parse_attachments(self.config)


def parse_attachments(config: Mapping[str, Any]) -> set[tuple[str, str]]:
    """The (containerID, ifname) pairs of GC's `cni.dev/valid-attachments`, checked entirely."""
    key = "cni.dev/valid-attachments"
    raw = config.get(key)
    if raw is None:
        key = "cni.dev/attachments"
        raw = config.get(key)
    if raw is None:
        return set()
    if not isinstance(raw, list):
        raise CNIError(INVALID_CONFIG, f"{key} must be a list of attachments",
                       f"got {fastjson.dumps(raw)[:200]}")
    out: set[tuple[str, str]] = set()
    for n, item in enumerate(raw):
        cid = item.get("containerID") if isinstance(item, dict) else None
        ifname = item.get("ifname") if isinstance(item, dict) else None
        if not isinstance(cid, str) or not cid or not isinstance(ifname, str) or not ifname:
            raise CNIError(INVALID_CONFIG, f"{key}[{n}] is not an attachment: it needs a containerID "
                           "and an ifname, both non-empty strings", fastjson.dumps(item)[:200])
        out.add((cid, ifname))
    return out


def parse_env(env: Mapping[str, str]) -> Request:
    """Read the CNI_* variables; every missing or invalid one is named in a single code-4 error."""
    command = env.get("CNI_COMMAND", "")
    if command not in VERBS:
        raise CNIError(INVALID_ENVIRONMENT, f"unknown CNI_COMMAND: {command}",
                       f"CNI_COMMAND must be one of {', '.join(VERBS)}")
    problems = [(var, f"{var} is missing") for var in REQUIRED_ENV[command] if not env.get(var)]
    container_id = env.get("CNI_CONTAINERID", "")
    ifname = env.get("CNI_IFNAME", "")
    if command in ("ADD", "DEL", "CHECK"):
        if container_id and (why := check_container_id(container_id)):
            problems.append(("CNI_CONTAINERID", why))
        if ifname and (why := check_ifname(ifname, creating=command != "DEL")):
            problems.append(("CNI_IFNAME", why))
    if problems:  # the spec wants every bad variable named in the message itself
        raise CNIError(INVALID_ENVIRONMENT, "required env variables [" + ", ".join(
            var for var, _ in problems) + "] missing or invalid", "; ".join(why for _, why in problems))
    return Request(
        command=command,
        container_id=container_id,
        netns=env.get("CNI_NETNS", ""),
        ifname=ifname,
        path=plugin_dirs(env.get("CNI_PATH", "")),
        env=env,
    )


def plugin_dirs(cni_path: str) -> list[str]:
    """CNI_PATH's absolute directories. An empty or relative element would look plugins up in the
    working directory, which a runtime never means: it is skipped, not an error, so the
    directories the runtime did mean still serve (an element `.` or `bin` left over in a
    runtime's environment does not break every call)."""
    return [p for p in cni_path.split(":") if p.startswith("/")]


MAX_DEPTH = 64  # levels of objects and arrays; a real config has fewer than 10
# Bytes of a JSON document from outside (stdin, an IPAM plugin's answer) decoded at most; stdin
# is read no further (an answer is read whole, bounded by the delegate's timeout). A real config
# with its runtimeConfig and prevResult is a few KiB; the largest a runtime can send is about
# 1.5 MiB (Kubernetes caps a pod's annotations at 256 KiB, which JSON escaping can grow
# six-fold), so 4 MiB refuses nothing real and bounds a call's memory: decoded, a document takes
# 2 to 8 times its text in usual shapes, about 30 times at worst (nothing but empty arrays).
MAX_STDIN = 4 << 20
_TOO_DEEP = object()


def _lone_surrogate(text: str) -> bool:
    """Whether text holds a UTF-16 surrogate that no UTF-8 can carry (JSON's `\\ud800` alone)."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def inspect(value: Any) -> tuple[int, str | None]:
    """How deep objects and arrays nest in a decoded document (a scalar is 0), and the first
    string, key or value, holding a lone surrogate (None: none does).

    Level by level and without recursion; only containers are queued, so a flat array of
    millions of numbers costs one pass and no memory beyond the document itself."""
    depth, bad = 0, None
    level = [value] if isinstance(value, (dict, list)) else []
    if isinstance(value, str) and _lone_surrogate(value):
        bad = value
    while level:
        depth += 1
        if depth > MAX_DEPTH:
            break
        below: list[Any] = []
        for item in level:
            children: Iterable[Any]
            if isinstance(item, dict):
                if bad is None:
                    bad = next((key for key in item if _lone_surrogate(key)), None)
                children = item.values()
            else:
                children = item
            for child in children:
                if isinstance(child, (dict, list)):
                    below.append(child)
                elif bad is None and isinstance(child, str) and _lone_surrogate(child):
                    bad = child
        level = below
    return depth, bad


def decode(data: bytes, what: str) -> Any:
    """One JSON document a runtime or a delegate sent, held to what Go's decoder takes (code 6:
    not JSON, NaN and Infinity, numbers beyond float64, nesting past MAX_DEPTH) and to what a
    path, a firewall batch and netlink can carry (code 7: a lone surrogate in any string).

    Go's decoder would turn a lone surrogate into U+FFFD; refusing it instead keeps a name, a
    path or a comment from silently naming something other than what the caller wrote.
    More than MAX_STDIN bytes is code 6 undecoded."""
    if len(data) > MAX_STDIN:
        raise CNIError(DECODING_FAILURE, f"failed to decode {what}: too large",
                       f"it holds more than {MAX_STDIN} bytes")
    try:
        value = fastjson.loads(data)
    except fastjson.TooDeep:
        value = _TOO_DEEP
    except ValueError as e:  # UnicodeDecodeError is one
        raise CNIError(DECODING_FAILURE, f"failed to decode {what}: not JSON", str(e)) from None
    depth, bad = inspect(value) if value is not _TOO_DEEP else (MAX_DEPTH + 1, None)
    if depth > MAX_DEPTH:
        raise CNIError(DECODING_FAILURE, f"failed to decode {what}: nested too deeply",
                       f"at most {MAX_DEPTH} levels of objects and arrays")
    if bad is not None:
        raise CNIError(INVALID_CONFIG, f"invalid string at {_where(value, bad)} in {what}: a lone "
                       "UTF-16 surrogate", f"{fastjson.dumps(bad)[:120]} is not Unicode text (no UTF-8 "
                       "can carry it)")
    return value


def _where(value: Any, bad: str) -> str:
    """Where `bad` sits in a document, as `ipam.dataDir` or `x[1]` (a key: the object holding it)."""
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        item, path = stack.pop()
        if isinstance(item, dict):
            if bad in item:
                return path or "the top level"
            stack.extend((child, f"{path}.{key}" if path else key) for key, child in item.items())
        elif isinstance(item, list):
            stack.extend((child, f"{path}[{n}]") for n, child in enumerate(item))
        elif item is bad or item == bad:
            return path
    return "?"


def parse_stdin(req: Request, stdin: bytes) -> dict[str, Any]:
    """Decode the config and settle its version; the plugin's schema is checked afterwards.

    The caller reads at most MAX_STDIN + 1 bytes (`dispatch.main`): more is refused unread."""
    req.stdin = stdin
    config = decode(stdin, "the network config")
    if not isinstance(config, dict):
        raise CNIError(DECODING_FAILURE, "failed to decode the network config: not a JSON object",
                       f"got {type(config).__name__}")
    version = config.get("cniVersion")
    if version is None or version == "":
        version = versions.DEFAULT_WHEN_ABSENT
    if not isinstance(version, str):
        raise CNIError(DECODING_FAILURE, f"invalid cniVersion {fastjson.dumps(version)}: not a string")
    req.version = version
    return config


def finish(req: Request, config: dict[str, Any], cni_args_keys: frozenset[str] | None,
           text_addresses: bool = False, read_prev_result: bool = True) -> None:
    """Name, CNI_ARGS and prevResult: the parts every plugin shares once its schema passed.

    `text_addresses`: the plugin only passes prevResult's addresses on (see `Result.from_json`).
    `read_prev_result`: False for a plugin that never uses it (as its reference never reads it).
    """
    if why := check_network_name(config.get("name")):
        raise CNIError(INVALID_CONFIG, why, f"name: {fastjson.dumps(config.get('name'))}")
    req.config = config
    if cni_args_keys is not None:
        req.args = parse_cni_args(req.env.get("CNI_ARGS", ""), cni_args_keys)
    raw_prev = config.get("prevResult")
    if raw_prev is not None and read_prev_result:
        try:
            req.prev_result = Result.from_json(raw_prev, req.version, text_addresses)
        except CNIError as e:
            if req.command == "DEL":  # best effort: DEL must not need the result it is undoing
                sys.stderr.write(f"ignoring a prevResult that does not parse: {e}\n")
                return
            raise CNIError(DECODING_FAILURE, f"failed to parse prevResult: {e.msg}", e.details) from None
