"""Plain-data classes, declared as dataclasses are, made without generating code.

`dataclasses.dataclass` writes and compiles each class's `__init__`, `__repr__` and `__eq__` (and,
with slots, builds the class twice) when its module is imported: for the model's fourteen classes
that was about 8 ms of every command's start-up, a tenth of `import typer`. `record` makes the same
kind of class (slots; an `__init__` taking the fields in order or by name, with defaults and
default factories; `__eq__` and `__repr__` over the fields) with methods shared by every record
class. mypy reads it as a dataclass (PEP 681). The store builds objects from its rows without
calling `__init__` (store/rows.py), so the shared, slower `__init__` costs only objects made one by
one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, Field, field
from typing import Any, TypeVar, dataclass_transform

__all__ = ["Record", "field", "fields", "is_record", "record"]

T = TypeVar("T")


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


@dataclass_transform(field_specifiers=(field,))
def record(cls: type[T]) -> type[T]:
    """The record class `cls` declares: its annotated names are its fields, in order."""
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
        if isinstance(value, Field):
            if value.default_factory is not MISSING:
                factories[name] = value.default_factory
            elif value.default is not MISSING:
                defaults[name] = value.default
        else:
            defaults[name] = value
    space.update(__slots__=names, __fields__=names, __defaults__=defaults, __factories__=factories)
    bases = cls.__bases__ if Record in cls.__mro__ else (*[b for b in cls.__bases__ if b is not object], Record)
    made: type[T] = type(cls.__name__, bases, space)
    made.__qualname__ = cls.__qualname__
    return made


def fields(cls: type) -> tuple[str, ...]:
    """A record class's field names, in order."""
    names: tuple[str, ...] = cls.__fields__  # type: ignore[attr-defined]
    return names


def is_record(cls: object) -> bool:
    return isinstance(cls, type) and issubclass(cls, Record) and cls is not Record
