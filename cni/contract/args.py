"""CNI_ARGS parsing with libcni's rules: `K=V;K=V`, strict unless IgnoreUnknown is set."""

from __future__ import annotations

from .errors import INVALID_CONFIG, CNIError

_TRUE = frozenset({"1", "true", "True"})


def parse_cni_args(raw: str, known: frozenset[str]) -> dict[str, str]:
    """Split CNI_ARGS into a dict of the keys the plugin knows.

    Like libcni, every pair must be exactly `K=V`, keys match case-sensitively, and an unknown
    key is an error unless `IgnoreUnknown` is 1/true/True (runtimes such as containerd set it).
    """
    if not raw:
        return {}
    pairs: list[tuple[str, str]] = []
    for item in raw.split(";"):
        kv = item.split("=")
        if len(kv) != 2:
            raise CNIError(INVALID_CONFIG, f"ARGS: invalid pair {item!r}",
                           "CNI_ARGS must be K=V pairs separated by ';'")
        pairs.append((kv[0], kv[1]))
    ignore_unknown = any(k == "IgnoreUnknown" and v in _TRUE for k, v in pairs)
    out: dict[str, str] = {}
    for key, value in pairs:
        if key == "IgnoreUnknown":
            continue
        if key in known:
            out[key] = value
        elif not ignore_unknown:
            raise CNIError(INVALID_CONFIG, f"ARGS: unknown args [{key}]",
                           f"CNI_ARGS key {key!r} is not understood; set IgnoreUnknown=1 to skip it")
    return out
