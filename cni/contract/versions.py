"""Spec versions: which ones we speak and what each allows."""

from __future__ import annotations

from .errors import INCOMPATIBLE_VERSION, CNIError

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


def require_verb(command: str, version: str) -> None:
    """CHECK needs 0.4.0, STATUS and GC need 1.1.0."""
    minimum = VERB_MINIMUM[command]
    if not at_least(version, minimum):
        raise CNIError(INCOMPATIBLE_VERSION, f"config version does not allow {command}",
                       f'config is "{version}", {command} needs {minimum} or later')
