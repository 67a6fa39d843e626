"""Plain-data classes, declared as dataclasses are, made without generating code.

`dataclasses.dataclass` writes and compiles each class's `__init__`, `__repr__` and `__eq__` (and,
with slots, builds the class twice) when its module is imported: for the model's fourteen classes
and the seven others every command loads, that was about 10 ms of every command's start-up, a
tenth of `import typer`. `record` makes the same kind of class (slots; an `__init__` taking the
fields in order or by name, with defaults and default factories; `__eq__` and `__repr__` over the
fields; with `frozen=True`, no assignment and a hash) with methods shared by every record class.
mypy reads it as a dataclass (PEP 681). The store builds objects from its rows without calling
`__init__` (store/rows.py), so the shared, slower `__init__` costs only objects made one by one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar, dataclass_transform, overload

__all__ = ["Record", "field", "fields", "is_record", "record"]

T = TypeVar("T")


class _Factory:
    """A field's default made anew for each object (`field(default_factory=list)`)."""

    __slots__ = ("make",)

    def __init__(self, make: Callable[[], Any]) -> None:
        self.make = make


def field(*, default_factory: Callable[[], T]) -> T:
    """A field whose default is made anew for each object, as `dataclasses.field` does."""
    made: T = _Factory(default_factory)  # type: ignore[assignment]  # the class body's placeholder, as dataclasses'
    return made


class Record:
    """The methods every record class shares; its fields are the class's `__slots__`."""

    __slots__ = ()
    __fields__: tuple[str, ...] = ()
    __defaults__: dict[str, Any] = {}
    __factories__: dict[str, Callable[[], Any]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        cls = type(self)
        names = cls.__fields__
        if len(args) > len(names):
            raise TypeError(f"{cls.__name__}() takes {len(names)} arguments but {len(args)} were given")
        setter = object.__setattr__
        for name, value in zip(names, args):
            setter(self, name, value)
        for name in names[len(args):]:
            if name in kwargs:
                value = kwargs.pop(name)
            elif name in cls.__defaults__:
                value = cls.__defaults__[name]
            elif name in cls.__factories__:
                value = cls.__factories__[name]()
            else:
                raise TypeError(f"{cls.__name__}() missing required argument: '{name}'")
            setter(self, name, value)
        if kwargs:
            given = sorted(kwargs)
            twice = [n for n in given if n in names]
            what = "got multiple values for argument" if twice else "got an unexpected keyword argument"
            raise TypeError(f"{cls.__name__}() {what} '{(twice or given)[0]}'")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.__fields__)

    __hash__ = None  # type: ignore[assignment]  # mutable, as a dataclass with eq is

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{n}={getattr(self, n)!r}' for n in self.__fields__)})"


class _Frozen(Record):
    """A record whose fields are never assigned after `__init__`: hashable, as a frozen dataclass."""

    __slots__ = ()

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field '{name}' of a frozen {type(self).__name__}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field '{name}' of a frozen {type(self).__name__}")

    def __hash__(self) -> int:  # type: ignore[override]  # Record's objects are unhashable, these are not
        return hash(tuple(getattr(self, n) for n in self.__fields__))


@overload
def record(cls: type[T], /) -> type[T]: ...
@overload
def record(*, frozen: bool = False) -> Callable[[type[T]], type[T]]: ...


@dataclass_transform(field_specifiers=(field,))
def record(cls: type[T] | None = None, /, *, frozen: bool = False) -> type[T] | Callable[[type[T]], type[T]]:
    """The record class `cls` declares: its annotated names are its fields, in order."""
    if cls is None:
        return lambda c: _make(c, frozen)
    return _make(cls, frozen)


def _make(cls: type[T], frozen: bool) -> type[T]:
    names = tuple(cls.__dict__.get("__annotations__", {}))
    space = {k: v for k, v in cls.__dict__.items() if k not in names and k not in ("__dict__", "__weakref__")}
    defaults: dict[str, Any] = {}
    factories: dict[str, Callable[[], Any]] = {}
    for name in names:
        if name not in cls.__dict__:
            if defaults or factories:
                raise TypeError(f"{cls.__name__}: field '{name}' without a default follows one with a default")
            continue
        value = cls.__dict__[name]
        if isinstance(value, _Factory):
            factories[name] = value.make
        else:
            defaults[name] = value
    space.update(__slots__=names, __fields__=names, __defaults__=defaults, __factories__=factories)
    base = _Frozen if frozen else Record
    bases = cls.__bases__ if Record in cls.__mro__ else (*[b for b in cls.__bases__ if b is not object], base)
    made: type[T] = type(cls.__name__, bases, space)
    made.__qualname__ = cls.__qualname__
    return made


def fields(cls: type) -> tuple[str, ...]:
    """A record class's field names, in order."""
    names: tuple[str, ...] = cls.__fields__  # type: ignore[attr-defined]
    return names


def is_record(cls: object) -> bool:
    return isinstance(cls, type) and issubclass(cls, Record) and cls is not Record
