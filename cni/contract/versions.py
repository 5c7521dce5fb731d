"""Spec versions: which ones we speak and what each allows."""

from __future__ import annotations

from .errors import DECODING_FAILURE, INCOMPATIBLE_VERSION, CNIError

SUPPORTED: tuple[str, ...] = ("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
CURRENT = "1.1.0"
DEFAULT_WHEN_ABSENT = "0.1.0"  # libcni's reading of a config without cniVersion


def split(version: object) -> tuple[int, int, int] | None:
    """(major, minor, patch), or None when version is not of that form."""
    parts = version.split(".") if isinstance(version, str) else []
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    return int(parts[0]), int(parts[1]), int(parts[2])


def parse(version: str) -> tuple[int, int, int]:
    """Split a semantic version; a malformed one is an incompatible version."""
    parsed = split(version)
    if parsed is None:
        raise CNIError(INCOMPATIBLE_VERSION, f"invalid version {version!r}",
                       f"plugin supports {go_list(SUPPORTED)}")
    return parsed


def at_least(version: str, minimum: str) -> bool:
    """True when version >= minimum."""
    return parse(version) >= parse(minimum)


def go_list(items: tuple[str, ...]) -> str:
    """A list as libcni's details print it (`["0.1.0" "0.2.0"]`), so logs read the same."""
    return "[" + " ".join(f'"{v}"' for v in items) + "]"


def require_supported(version: str, supported: tuple[str, ...] = SUPPORTED) -> None:
    """Refuse a config version the plugin does not implement (code 1, the plugin's list in details)."""
    if version not in supported:
        raise CNIError(INCOMPATIBLE_VERSION, "incompatible CNI versions",
                       f'config is "{version}", plugin supports {go_list(supported)}')


# The first version that defines each verb.
VERB_MINIMUM = {"ADD": "0.1.0", "DEL": "0.1.0", "CHECK": "0.4.0", "STATUS": "1.1.0", "GC": "1.1.0"}


def go_parse(version: str) -> tuple[int, int, int]:
    """libcni's ParseVersion: one to three dot-separated integers (missing parts are 0). Anything
    else fails its decoding, which skel reports as code 6 for the verbs it gates by version."""
    parts = version.split(".")
    if len(parts) >= 4:
        raise CNIError(DECODING_FAILURE, f"invalid version {version!r}: too many parts")
    out = [0, 0, 0]
    for i, part in enumerate(parts):
        which = ("major", "minor", "micro")[i]
        digits = part[1:] if part[:1] in ("+", "-") else part
        if not digits.isascii() or not digits.isdigit():
            raise CNIError(DECODING_FAILURE, f'failed to convert {which} version part "{part}": '
                           f'strconv.Atoi: parsing "{part}": invalid syntax',
                           f"cniVersion {version!r} is not a version")
        out[i] = int(part)
    return out[0], out[1], out[2]


def require_verb(command: str, version: str, supported: tuple[str, ...] = SUPPORTED) -> None:
    """CHECK needs 0.4.0, STATUS and GC need 1.1.0, in skel's order: a version that does not parse
    is code 6; one below the verb's minimum, or above every version the plugin speaks, is code 1.
    (ADD and DEL are gated by `require_supported` alone, as skel gates them.)"""
    minimum = VERB_MINIMUM[command]
    if command in ("ADD", "DEL"):
        return
    parsed = go_parse(version)
    if parsed < go_parse(minimum):
        raise CNIError(INCOMPATIBLE_VERSION, f"config version does not allow {command}",
                       f'config is "{version}", {command} needs {minimum} or later')
    if not any(go_parse(v) >= parsed for v in supported):
        raise CNIError(INCOMPATIBLE_VERSION, f"plugin version does not allow {command}",
                       f'config is "{version}", plugin supports {go_list(supported)}')
