"""A tiny value-object base for the contract and the kernel layer.

`dataclasses` imports `inspect` and builds classes with `exec`, a large share of a plugin call's
start-up; these objects only need keyword construction, defaults, equality and a repr.
"""

from __future__ import annotations


class Record:
    """Constructed by keyword, compared and printed by the names in `__slots__`.

    `_defaults` maps a field to its default; a callable default (e.g. `list`) is called so
    that no two objects share a mutable value. A field with no default is required.
    """

    __slots__: tuple[str, ...] = ()
    _defaults: dict[str, object] = {}

    def __init__(self, *args: object, **fields: object) -> None:
        if len(args) > len(self.__slots__):
            raise TypeError(f"{type(self).__name__}: too many positional fields")
        for name, value in zip(self.__slots__, args, strict=False):
            if name in fields:
                raise TypeError(f"{type(self).__name__}: {name!r} given twice")
            fields[name] = value
        for name in self.__slots__:
            if name in fields:
                value = fields.pop(name)
            elif name in self._defaults:
                value = self._defaults[name]
                if callable(value):
                    value = value()
            else:
                raise TypeError(f"{type(self).__name__}: missing field {name!r}")
            object.__setattr__(self, name, value)
        if fields:
            raise TypeError(f"{type(self).__name__}: unknown fields {sorted(fields)}")

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == other._values()  # type: ignore[attr-defined]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"{type(self).__name__}({inner})"
