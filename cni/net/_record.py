"""A tiny value-object base: `dataclasses` would pull in `inspect` (~15 ms at start-up)."""

from __future__ import annotations


class Record:
    """Keyword-constructed, compared and printed by the names in `__slots__`.

    Subclasses list their fields in `__slots__`; those named in `_optional` default to None.
    """

    __slots__: tuple[str, ...] = ()
    _optional: tuple[str, ...] = ()

    def __init__(self, **fields: object) -> None:
        for name in self.__slots__:
            if name in fields:
                value = fields.pop(name)
            elif name in self._optional:
                value = None
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

    def as_dict(self) -> dict[str, object]:
        """Field name -> value, e.g. for logging or JSON."""
        return dict(zip(self.__slots__, self._values(), strict=True))
