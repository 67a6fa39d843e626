"""Rows: the parse cache's compact form of a state, derived from the model's dataclasses.

Each object is a tuple of its fields in model order (a nested list of objects a tuple of their
rows, a list of strings a tuple): quick to marshal, quick to compare, and turned back into objects
without any checks (the cache only ever holds a state that passed validation). The converters are
generated once per class from its fields, so they run as fast as hand-written ones.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from msi_cli.core.model import State
from msi_cli.store import records

Doc = dict[str, Any]
Row = tuple[Any, ...]
# Per collection, (key, the object's fields in model order).
Rows = dict[str, list[tuple[str, Row]]]


def _row_source(cls: type, var: str, depth: int = 0) -> str:
    """An expression for the row of the `cls` object named `var`."""
    plan = records.plan(cls)
    lists = dict(plan.lists)
    parts = []
    for n, (name, _, _) in enumerate(plan.fields):
        value = f"{var}.{name}"
        if n not in lists:
            parts.append(value)
        elif (nested := lists[n]) is not None:
            item = f"e{depth}"
            parts.append(f"tuple([{_row_source(nested, item, depth + 1)} for {item} in {value}])")
        else:
            parts.append(f"tuple({value})")
    return f"({', '.join(parts)},)"


def _object_source(cls: type) -> str:
    """A function `build(row)` for the `cls` object whose row it is: the object is made without
    calling `__init__` (the model's is shared by every class, and slower), its fields set in turn."""
    plan = records.plan(cls)
    lists = dict(plan.lists)
    lines = ["def build(x):", f"    o = new({cls.__name__})"]
    targets = [f"o.{name}" if n not in lists else "_" for n, (name, _, _) in enumerate(plan.fields)]
    lines.append(f"    {', '.join(targets)}, = x")  # the plain fields in one unpacking
    for n, nested in plan.lists:
        name = plan.fields[n][0]
        value = f"[build_{nested.__name__}(e) for e in x[{n}]]" if nested is not None else f"list(x[{n}])"
        lines.append(f"    o.{name} = {value}")
    lines.append("    return o")
    return "\n".join(lines)


def _compile(source: str, cls: type) -> Callable[[Any], Any]:
    names = {c.__name__: c for c in _classes(cls)}
    fn: Callable[[Any], Any] = eval(f"lambda x: {source}", names)  # source built from the model's own field names
    return fn


def _classes(cls: type) -> list[type]:
    found = [cls]
    for _, nested in records.plan(cls).lists:
        if nested is not None:
            found.extend(_classes(nested))
    return found


@functools.cache
def row_of(cls: type) -> Callable[[Any], Row]:
    """The function that turns one `cls` object into its row."""
    return _compile(_row_source(cls, "x"), cls)


@functools.cache
def object_of(cls: type) -> Callable[[Row], Any]:
    """The function that turns a row back into a `cls` object."""
    names: dict[str, Any] = {cls.__name__: cls, "new": object.__new__}
    for _, nested in records.plan(cls).lists:
        if nested is not None:
            names[f"build_{nested.__name__}"] = object_of(nested)
    exec(_object_source(cls), names)  # source built from the model's own field names
    build: Callable[[Row], Any] = names["build"]
    return build


def collection_rows(coll: str, objects: dict[str, Any]) -> list[tuple[str, Row]]:
    row = row_of(records.collections()[coll])
    return [(k, row(v)) for k, v in objects.items()]


def collection_objects(coll: str, table: list[tuple[str, Row]]) -> dict[str, Any]:
    build = object_of(records.collections()[coll])
    return {k: build(r) for k, r in table}


def shared(table: list[tuple[str, Row]]) -> list[tuple[str, Row]]:
    """The same rows with equal strings made one object: marshal then writes each once and reads
    it back shared (a third of the size and of the reading time for resources, whose subscription,
    group, location and times repeat). Rows built from objects read that way stay shared."""
    seen: dict[str, str] = {}
    one = seen.setdefault

    def share(value: Any) -> Any:
        kind = type(value)
        if kind is str:
            return one(value, value)
        if kind is tuple:
            return tuple([share(v) for v in value])
        return value

    return [(key, share(row)) for key, row in table]


def rows(state: State) -> Rows:
    return {coll: collection_rows(coll, getattr(state, coll)) for coll in records.collections()}


def from_rows(head: Doc, table: Rows) -> State:
    """Objects from `rows` output, without checks."""
    state = State(head["schema"], head.get("clock_offset", 0), head["default_subscription"])
    for coll in records.collections():
        setattr(state, coll, collection_objects(coll, table[coll]))
    return state
