"""JSON through CPython's C codec (`_json`) without importing the `json` package.

`import json` costs every plugin call start-up time, nearly all of it `re`, `enum` and `functools`,
which the package needs only for its pure-Python fallbacks. The C scanner and encoder used here
are the very code `json.loads` and `json.dumps` run; this module hands them the same settings.
Malformed input raises ValueError: json.JSONDecodeError, from the json package, which is loaded only
on that path (the bundle keeps it for that).

Decoding is Go's, not Python's, where the two part: `NaN`, `Infinity` and `-Infinity` are not JSON
and a number beyond float64 (`1e999`) is no number, so both are refused instead of becoming
non-finite floats (which `dumps` would print back as non-JSON); nesting deeper than the C stack
allows is refused as malformed, not raised as RecursionError.
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO, Any

_WHITESPACE = " \t\n\r"


class TooDeep(ValueError):
    """Nesting deeper than the decoder's stack."""


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON value")


def _finite(text: str) -> float:
    value = float(text)
    if value - value != 0.0:  # inf - inf is nan, and nan is unequal to everything
        raise ValueError(f"number {text[:40]} is out of range")
    return value


def _finite_int(text: str) -> int:
    """An integer Go's decoder would take: one whose float64 is finite (a 400-digit integer is
    out of range there, as 1e400 is)."""
    if len(text) > 300:
        _finite(text)
    return int(text)


class _Settings:
    """The attributes the C scanner reads from a json.JSONDecoder."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = staticmethod(_finite)
    parse_int = staticmethod(_finite_int)
    parse_constant = staticmethod(_no_constant)
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
    start = 0
    while start < len(text) and text[start] in _WHITESPACE:  # lstrip would copy the whole text
        start += 1
    try:
        value, end = _scan(text, start)
    except StopIteration as stop:
        raise ValueError(f"Expecting value: char {stop.value}") from None
    except RecursionError:
        raise TooDeep("nested too deeply") from None
    except SystemError:
        # CPython 3.11's scanner describes a syntax error with json.decoder.JSONDecodeError only
        # when json.decoder is already loaded; on this rare path, load it and decode again.
        import json

        return json.loads(text, parse_float=_finite, parse_constant=_no_constant)
    if text[end:].strip(_WHITESPACE):
        raise ValueError(f"Extra data: char {end}")
    return value


def load(file: IO[bytes] | IO[str]) -> Any:
    return loads(file.read())


def dumps(value: object) -> str:
    """Encode as json.dumps(value) does, byte for byte."""
    return "".join(_encode(value, 0))
