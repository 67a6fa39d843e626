"""core/datatype.record: the model's classes behave as the dataclasses they replaced (same
constructor, defaults, equality, repr, slots), checked against `dataclasses.dataclass` itself."""

from __future__ import annotations

import copy
import dataclasses
import inspect

import pytest

from msi_cli.core import model
from msi_cli.core.datatype import Record, field, fields, is_record, record, replace

MODEL = [c for c in vars(model).values() if isinstance(c, type) and is_record(c)]


def _oracle(cls: type) -> type:
    """The same declaration as a slotted dataclass."""
    space = {"__annotations__": dict(cls.__annotations__)}
    for name in fields(cls):
        if name in cls.__defaults__:
            space[name] = cls.__defaults__[name]
        elif name in cls.__factories__:
            space[name] = dataclasses.field(default_factory=cls.__factories__[name])  # the dataclass's own
    return dataclasses.dataclass(slots=True)(type(cls.__name__, (), space))


def _values(cls: type, seed: str) -> list:
    return [f"{seed}-{n}" for n in range(len(fields(cls)))]


def test_every_model_class_is_a_record_with_its_annotated_fields_in_order():
    assert len(MODEL) == 14
    for cls in MODEL:
        assert fields(cls) == tuple(cls.__annotations__), cls
        assert cls.__slots__ == fields(cls)
        assert not hasattr(cls(*_values(cls, "a")), "__dict__")


@pytest.mark.parametrize("cls", MODEL, ids=lambda c: c.__name__)
def test_constructor_equality_and_repr_match_the_dataclass(cls):
    oracle = _oracle(cls)
    args = _values(cls, "a")
    mine, theirs = cls(*args), oracle(*args)
    assert repr(mine) == repr(theirs)
    assert mine == cls(*args) and not mine != cls(*args)
    assert mine != cls(*_values(cls, "b"))
    assert mine != theirs  # another class: never equal, as dataclasses
    by_name = cls(**dict(zip(fields(cls), args)))
    assert by_name == mine
    required = [n for n in fields(cls) if n not in cls.__defaults__ and n not in cls.__factories__]
    if len(required) < len(fields(cls)):  # the defaults, and a new list for each object
        short = cls(*args[: len(required)])
        assert repr(short) == repr(oracle(*args[: len(required)]))
        for name in cls.__factories__:
            assert getattr(short, name) is not getattr(cls(*args[: len(required)]), name)


def test_wrong_calls_raise_type_error_as_a_dataclass_does():
    with pytest.raises(TypeError, match="missing 5 required positional arguments: 'type', "):
        model.Resource("web1")
    with pytest.raises(TypeError, match="multiple values for argument 'name'"):
        model.Resource("web1", "vm", "s", "g", "l", "t", name="x")
    with pytest.raises(TypeError, match="unexpected keyword argument 'colour'"):
        model.Resource("web1", "vm", "s", "g", "l", "t", colour="red")
    with pytest.raises(TypeError, match="takes 5 positional arguments but 6 were given"):
        model.Subscription("a", "b", "c", "d", "e")
    assert model.Resource.__init__.__qualname__ == "Resource.__init__"  # compiled by the first object
    with pytest.raises(TypeError, match="unhashable"):
        hash(model.Subscription("a", "b", "c", "d"))
    with pytest.raises(AttributeError):
        model.Subscription("a", "b", "c", "d").colour = "red"


def test_a_field_without_default_after_one_with_is_refused():
    with pytest.raises(TypeError, match="without a default follows"):
        @record
        class Bad:
            a: str = "x"
            b: str


def test_copies_and_properties_survive():
    r = model.Resource("web1", "webapp", "sub", "rg", "eastus", "2026-01-01T00:00:00Z", None,
                       [model.UserAssignment("/id", "p", "c")])
    c = copy.copy(r)
    assert c == r and c.user_assigned is r.user_assigned
    d = copy.deepcopy(r)
    assert d == r and d.user_assigned is not r.user_assigned
    assert r.id.endswith("/providers/Microsoft.Web/sites/web1") and r.user_identity_ids == ["/id"]
    assert isinstance(r, Record) and r.__class__.__qualname__ == "Resource"
    assert inspect.getdoc(model.UserAssignment).startswith("A user-assigned identity")


def test_frozen_records_are_hashable_and_never_assigned():
    from msi_cli.core.arm import ParsedId, parse_id
    from msi_cli.core.tokens import Selector

    a, b = Selector(client_id="x"), Selector(client_id="x")
    assert a == b and hash(a) == hash(b) and len({a, b, Selector()}) == 2
    with pytest.raises(AttributeError, match="frozen"):
        a.client_id = "y"
    with pytest.raises(AttributeError, match="frozen"):
        del a.client_id
    parsed = parse_id("/subscriptions/s/resourceGroups/g")
    assert parsed == ParsedId("s", "g", None, None) and repr(parsed) == "ParsedId(subscription_id='s', resource_group='g', arm_type=None, name=None)"


def test_field_factories_make_a_new_default_each_time():
    @record
    class Box:
        items: list[str] = field(default_factory=list)

    one, two = Box(), Box()
    one.items.append("x")
    assert two.items == [] and Box(["y"]).items == ["y"]


@pytest.mark.parametrize("cls", MODEL, ids=lambda c: c.__name__)
def test_replace_matches_dataclasses_replace(cls):
    oracle = _oracle(cls)
    args, other = _values(cls, "a"), _values(cls, "b")
    first = fields(cls)[0]
    mine = replace(cls(*args), **{first: other[0]})
    assert type(mine) is cls and repr(mine) == repr(dataclasses.replace(oracle(*args), **{first: other[0]}))
    assert replace(cls(*args)) == cls(*args)  # every field copied
    with pytest.raises(TypeError):
        replace(cls(*args), no_such_field=1)


def test_replace_makes_a_new_frozen_record():
    @record(frozen=True)
    class Point:
        x: int
        y: int = 0

    p = Point(1, 2)
    moved = replace(p, y=5)
    assert (moved, p) == (Point(1, 5), Point(1, 2)) and hash(moved) == hash(Point(1, 5))
