"""The dict operations that need every object of a LazyCollection (store/lazycoll.py): each
builds the whole collection first (`whole()`), then answers as dict does."""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, KeysView, ValuesView
from typing import Any


class WholeDict(dict[str, Any]):
    __slots__ = ()

    def whole(self) -> WholeDict:
        """Build every object; a subclass's."""
        raise NotImplementedError

    def __iter__(self) -> Iterator[str]:
        return dict.__iter__(self.whole())

    def __reversed__(self) -> Iterator[str]:
        return dict.__reversed__(self.whole())

    def keys(self) -> KeysView[str]:  # type: ignore[override]  # dict's own view, typed as the ABC
        return dict.keys(self.whole())

    def values(self) -> ValuesView[Any]:  # type: ignore[override]  # as keys()
        return dict.values(self.whole())

    def items(self) -> ItemsView[str, Any]:  # type: ignore[override]  # as keys()
        return dict.items(self.whole())

    def __eq__(self, other: object) -> bool:
        return dict.__eq__(self.whole(), other.whole() if isinstance(other, WholeDict) else other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # mutable, as dict is

    def __repr__(self) -> str:
        return dict.__repr__(self.whole())

    def popitem(self) -> tuple[str, Any]:
        return dict.popitem(self.whole())

    def setdefault(self, key: str, default: Any = None) -> Any:
        return dict.setdefault(self.whole(), key, default)

    def update(self, *args: Any, **kwargs: Any) -> None:
        dict.update(self.whole(), *args, **kwargs)

    def clear(self) -> None:
        dict.clear(self.whole())

    def copy(self) -> dict[str, Any]:
        return dict(self.items())

    def __or__(self, other: Any) -> Any:  # dict's union, of every object
        return dict(self.items()) | other

    def __ror__(self, other: Any) -> Any:
        return dict(other) | dict(self.items())

    def __ior__(self, other: Any) -> WholeDict:  # type: ignore[override]  # as __or__
        dict.update(self.whole(), other)
        return self

    def __reduce__(self) -> Any:  # a copy or pickle is a plain dict of every object
        return (dict, (list(self.items()),))
