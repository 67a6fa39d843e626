"""Rows: the parse cache's compact form of a state, derived from the model's dataclasses.

Each object is a tuple of its fields in model order (a nested list of objects a tuple of their
rows, a list of strings a tuple): quick to marshal, quick to compare, and turned back into objects
without any checks (the cache only ever holds a state that passed validation).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from typing import Any

from msi_cli.core.model import State
from msi_cli.store import records

Doc = dict[str, Any]
# Per collection, (key, the object's fields in model order).
Rows = dict[str, list[tuple[str, tuple[Any, ...]]]]


@functools.cache
def row_of(cls: type) -> Callable[[Any], tuple[Any, ...]]:
    """The function that turns one `cls` object into its row."""
    plan = records.plan(cls)
    get = operator.attrgetter(*(name for name, _, _ in plan.fields))
    if not plan.lists:
        return get  # attrgetter of two or more names returns the tuple

    subs = [(n, row_of(nested) if nested is not None else None) for n, nested in plan.lists]

    def row(obj: Any) -> tuple[Any, ...]:
        values = list(get(obj))
        for n, sub in subs:
            values[n] = tuple(map(sub, values[n])) if sub is not None else tuple(values[n])
        return tuple(values)

    return row


@functools.cache
def object_of(cls: type) -> Callable[[tuple[Any, ...]], Any]:
    """The function that turns a row back into a `cls` object."""
    plan = records.plan(cls)
    if not plan.lists:
        return lambda row: cls(*row)
    subs = [(n, object_of(nested) if nested is not None else None) for n, nested in plan.lists]

    def build(row: tuple[Any, ...]) -> Any:
        values = list(row)
        for n, sub in subs:
            values[n] = [sub(v) for v in values[n]] if sub is not None else list(values[n])
        return cls(*values)

    return build


def rows(state: State) -> Rows:
    return {coll: [(k, row_of(cls)(v)) for k, v in getattr(state, coll).items()] for coll, cls in records.collections().items()}


def from_rows(head: Doc, table: Rows) -> State:
    """Objects from `rows` output, without checks."""
    state = State(head["schema"], head.get("clock_offset", 0), head["default_subscription"])
    for coll, cls in records.collections().items():
        build = object_of(cls)
        setattr(state, coll, {k: build(r) for k, r in table[coll]})
    return state
