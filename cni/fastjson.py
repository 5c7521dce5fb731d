"""JSON through CPython's C codec (`_json`) without importing the `json` package.

`import json` costs ~7 ms on every plugin call, nearly all of it `re`, `enum` and `functools`,
which the package needs only for its pure-Python fallbacks. The C scanner and encoder used here
are the very code `json.loads` and `json.dumps` run; this module hands them the same settings.
Malformed input raises ValueError: json.JSONDecodeError, from the json package, which is loaded only
on that path (the bundle keeps it for that).
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO, Any

_WHITESPACE = " \t\n\r"
_CONSTANTS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf")}


class _Settings:
    """The attributes the C scanner reads from a json.JSONDecoder."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_CONSTANTS.__getitem__)
    memo: dict = {}


# typeshed types the argument as a scanner; the C code reads only the attributes above from it.
_scan = _json.make_scanner(_Settings())  # type: ignore[arg-type]


def _refuse(obj: object) -> object:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


# As json.dumps(obj) with its defaults: ASCII output, ", " and ": " separators.
_encode = _json.make_encoder(None, _refuse, _json.encode_basestring_ascii, None, ": ", ", ",
                             False, False, True)


def loads(text: str | bytes | bytearray) -> Any:
    """Decode one JSON document (bytes as UTF-8); ValueError when it is not exactly that.

    Any, as json.loads: the document's shape is the caller's to check."""
    if not isinstance(text, str):
        text = bytes(text).decode("utf-8")
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration as stop:
        raise ValueError(f"Expecting value: char {stop.value}") from None
    except SystemError:
        # CPython 3.11's scanner describes a syntax error with json.decoder.JSONDecodeError only
        # when json.decoder is already loaded; on this rare path, load it and decode again.
        import json

        return json.loads(text)
    if text[end:].strip(_WHITESPACE):
        raise ValueError(f"Extra data: char {end}")
    return value


def load(file: IO[bytes] | IO[str]) -> Any:
    return loads(file.read())


def dumps(value: object) -> str:
    """Encode as json.dumps(value) does, byte for byte."""
    return "".join(_encode(value, 0))
