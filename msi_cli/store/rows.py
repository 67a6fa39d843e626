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


def _object_source(cls: type, var: str, depth: int = 0) -> str:
    """An expression for the `cls` object whose row is named `var`."""
    plan = records.plan(cls)
    if not plan.lists:
        return f"{cls.__name__}(*{var})"
    lists = dict(plan.lists)
    parts = []
    for n in range(len(plan.fields)):
        value = f"{var}[{n}]"
        if n not in lists:
            parts.append(value)
        elif (nested := lists[n]) is not None:
            item = f"e{depth}"
            parts.append(f"[{_object_source(nested, item, depth + 1)} for {item} in {value}]")
        else:
            parts.append(f"list({value})")
    return f"{cls.__name__}({', '.join(parts)})"


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
    return _compile(_object_source(cls, "x"), cls)


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
