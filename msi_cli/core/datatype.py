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

__all__ = ["Record", "field", "fields", "is_record", "record", "replace"]

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
        """The first object of a record class compiles the class's own `__init__` (as a
        dataclass's, with the fields as its parameters) and makes itself with it: a command pays
        for the classes it constructs, not for all of them at import."""
        cls = type(self)
        if "__fields__" not in cls.__dict__:  # a subclass that is not a record class itself
            raise TypeError(f"{cls.__name__} is not a record class")
        init = _compile_init(cls)
        cls.__init__ = init  # type: ignore[method-assign]  # installed once, on the class itself
        init(self, *args, **kwargs)

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


def _compile_init(cls: type) -> Callable[..., None]:
    names: tuple[str, ...] = cls.__fields__  # type: ignore[attr-defined]
    defaults: dict[str, Any] = cls.__defaults__  # type: ignore[attr-defined]
    factories: dict[str, Callable[[], Any]] = cls.__factories__  # type: ignore[attr-defined]
    scope: dict[str, Any] = {"_set": object.__setattr__, "_unset": _UNSET}
    params, body = [], []
    for n, name in enumerate(names):
        if name in defaults:
            scope[f"_d{n}"] = defaults[name]
            params.append(f"{name}=_d{n}")
            value = name
        elif name in factories:
            scope[f"_f{n}"] = factories[name]
            params.append(f"{name}=_unset")
            value = f"_f{n}() if {name} is _unset else {name}"
        else:
            params.append(name)
            value = name
        frozen = issubclass(cls, _Frozen)  # its __setattr__ refuses: set the slot as object does
        body.append(f"    _set(self, {name!r}, {value})" if frozen else f"    self.{name} = {value}")
    source = f"def __init__(self, {', '.join(params)}):\n" + ("\n".join(body) or "    pass")
    exec(source, scope)  # source built from the class's own field names, as dataclasses does
    init: Callable[..., None] = scope["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    return init


_UNSET = object()


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


def replace(obj: T, **changes: Any) -> T:
    """A new record of `obj`'s class with `changes` and every other field as `obj` has it, as
    `dataclasses.replace` makes one (a field added later is copied too)."""
    cls = type(obj)
    unknown = set(changes) - set(fields(cls))
    if unknown:
        raise TypeError(f"{cls.__name__} has no field {', '.join(sorted(unknown))}")
    made: T = cls(**{name: changes.get(name, getattr(obj, name)) for name in fields(cls)})
    return made


def is_record(cls: object) -> bool:
    return isinstance(cls, type) and issubclass(cls, Record) and cls is not Record
