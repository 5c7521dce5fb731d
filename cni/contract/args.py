"""CNI_ARGS parsing with libcni's rules: `K=V;K=V`, strict unless IgnoreUnknown is set."""

from __future__ import annotations

from .errors import INVALID_ENVIRONMENT, CNIError


def _bool(pair: str, value: str) -> bool:
    """IgnoreUnknown as libcni reads it: 1/true/0/false in any case; anything else is an error."""
    lowered = value.lower()
    if lowered in ("1", "true"):
        return True
    if lowered in ("0", "false"):
        return False
    raise CNIError(INVALID_ENVIRONMENT, f"CNI_ARGS: invalid boolean in pair {pair!r}",
                   "IgnoreUnknown takes 1, true, 0 or false")


def parse_cni_args(raw: str, known: frozenset[str]) -> dict[str, str]:
    """Split CNI_ARGS into a dict of the keys the plugin knows.

    Like libcni, every pair must be exactly `K=V`, keys match case-sensitively, the last of a
    repeated key wins, and unknown keys are an error (all named at once) unless `IgnoreUnknown`
    is true (runtimes such as containerd set it). A bad CNI_ARGS is an invalid environment
    variable, so the code is 4 and the message names CNI_ARGS.
    """
    if not raw:
        return {}
    ignore_unknown = False
    unknown: list[str] = []
    out: dict[str, str] = {}
    for item in raw.split(";"):
        kv = item.split("=")
        if len(kv) != 2:
            raise CNIError(INVALID_ENVIRONMENT, f"CNI_ARGS: invalid pair {item!r}",
                           "CNI_ARGS must be K=V pairs separated by ';'")
        key, value = kv
        if key == "IgnoreUnknown":
            ignore_unknown = _bool(item, value)
        elif key in known:
            out[key] = value
        else:
            unknown.append(item)
    if unknown and not ignore_unknown:
        raise CNIError(INVALID_ENVIRONMENT, f"CNI_ARGS: unknown args {unknown}",
                       "set IgnoreUnknown=1 in CNI_ARGS to skip keys the plugin does not understand")
    return out
