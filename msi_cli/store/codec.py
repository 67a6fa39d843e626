"""The state document: its schema version and upgrade chain, its header, and the whole state
<-> plain documents (what TOML holds), with validation.

A document is a dict of TOML-able values. Optional fields are left out rather than written as a
null (TOML has none), so `load(dump(s)) == s` holds for every state. The parts live beside this
module: records.py (one record <-> one model object, from the model's fields), validation.py (the
value checks and the error that locates a value), links.py (the invariants across records) and
rows.py (the parse cache's form).
"""

from __future__ import annotations

from collections.abc import Callable

from msi_cli.core.model import SCHEMA_VERSION, State
from msi_cli.errors import deep_input
from msi_cli.store import upgrades
from msi_cli.store.links import check_links
from msi_cli.store.records import Record, check_record, collections, read_record, state_key, to_record
from msi_cli.store.rows import Rows, collection_rows, from_rows, rows
from msi_cli.store.validation import (
    EARLIEST_YEAR,
    LATEST,
    LATEST_NOW,
    Doc,
    DocPath,
    InvalidDocument,
    Reader,
    collection,
    valid_instant,
)

__all__ = [
    "COLLECTIONS", "EARLIEST_YEAR", "LATEST", "LATEST_NOW", "SCHEMA_VERSION", "UPGRADES", "Doc", "DocPath",
    "InvalidDocument", "Record", "Rows", "check_header", "collection_rows", "check_links", "check_record", "dump", "from_rows", "header",
    "load", "locate", "records", "rows", "to_record", "upgrade", "valid_instant",
]

# In file order; the last two are optional tables: absent means empty.
COLLECTIONS = tuple(collections())

# ---- schema upgrades: UPGRADES[n] turns a version-n document into a version-(n+1) one ----------
# The steps live in store/upgrades.py. A step's number is the version it upgrades from.
UPGRADES: dict[int, Callable[[Doc], Doc]] = {1: upgrades.user_identities_with_ids, 2: upgrades.add_resource_groups}

# A collection's one record, where dropping its last letter does not give it.
_ONE = {"identities": "identity", "federated_credentials": "federated credential", "deleted_principals": "deleted principal"}


def upgrade(doc: Doc, upgrades: dict[int, Callable[[Doc], Doc]] | None = None) -> Doc:
    chain = UPGRADES if upgrades is None else upgrades
    version = doc.get("schema")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise InvalidDocument(("schema",), "no valid 'schema' version: this is not an msi-cli state file")
    if version > SCHEMA_VERSION:
        raise InvalidDocument(
            ("schema",),
            f"schema version {version} is newer than this msi-cli understands ({SCHEMA_VERSION}); upgrade msi-cli",
        )
    while version < SCHEMA_VERSION:
        doc = chain[version](doc)
        version += 1
        doc["schema"] = version
    return doc


# ---- the document ------------------------------------------------------------------------------------


def header(state: State) -> Doc:
    return {
        "schema": state.schema,
        "clock_offset": state.clock_offset,
        "default_subscription": state.default_subscription_id,
    }


def records(state: State) -> dict[str, list[tuple[str, Doc]]]:
    """Each collection's records, in order, with the key that identifies each."""
    return {coll: [(k, to_record(v)) for k, v in getattr(state, coll).items()] for coll in COLLECTIONS}


def dump(state: State) -> Doc:
    doc = header(state)
    for coll, recs in records(state).items():
        if recs:
            doc[coll] = [rec for _, rec in recs]
    return doc


def check_header(doc: Doc) -> State:
    top = Reader(doc, ())
    offset = doc.get("clock_offset", 0)
    if not isinstance(offset, int) or isinstance(offset, bool):
        raise InvalidDocument(("clock_offset",), "'clock_offset' must be a whole number of seconds")
    from msi_cli.core.timefmt import real_now

    now = real_now()
    if not -now <= offset <= LATEST_NOW - now:
        raise InvalidDocument(("clock_offset",), "'clock_offset' puts the simulated clock outside 1970-01-01 to 8999-01-01")
    return State(schema=doc["schema"], clock_offset=offset, default_subscription_id=top.guid("default_subscription"))


def decode(raw: bytes) -> tuple[str, Doc]:
    """The text and the TOML document of a state file's bytes; InvalidDocument (at no path: the
    message says where, if tomllib did) when they are not one. The one reader of state bytes as
    TOML, for the state file and a state export alike."""
    import tomllib

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidDocument((), f"not UTF-8 text (byte {exc.start})") from None
    try:
        with deep_input():
            return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidDocument((), f"not valid TOML: {exc}") from None
    except RecursionError:  # tomllib parses nested arrays and tables recursively
        raise InvalidDocument((), "arrays or tables nested too deeply for a state file") from None
    except ValueError:  # an integer of more digits than Python converts (sys.get_int_max_str_digits)
        raise InvalidDocument((), "an integer of more digits than a state file holds") from None


def load(doc: Doc) -> State:
    """Build and validate a State from an up-to-date document."""
    state = check_header(doc)
    for coll, cls in collections().items():
        target = getattr(state, coll)
        for r in collection(doc, coll):
            obj = read_record(cls, r)
            key = state_key(obj)
            if key in target:
                raise InvalidDocument(r.path, f"duplicate {_ONE.get(coll, coll[:-1]).replace('_', ' ')} '{key}'")
            target[key] = obj
    check_links(state)
    return state


def locate(text: str, path: DocPath) -> int | None:
    """The 1-based line of the value at `path` in a TOML text written as this store writes it."""
    if not path:
        return None
    lines = text.splitlines()
    if len(path) == 1 or not isinstance(path[1], int):
        key = path[0]
        for n, line in enumerate(lines, 1):
            s = line.strip()
            if s.startswith(f"{key} ") or s.startswith(f"{key}=") or s in (f"[[{key}]]", f"[{key}]"):
                return n
        return None
    coll, index = path[0], path[1]
    header = f"[[{coll}]]"
    count = -1
    start = None
    for n, line in enumerate(lines, 1):
        if line.strip() == header:
            count += 1
            if count == index:
                start = n
                break
    if start is None:
        return None
    if len(path) < 3:
        return start
    key = path[2]
    for n in range(start, len(lines)):
        s = lines[n].strip()
        if s.startswith("[") and not s.startswith(f"[[{coll}."):
            break
        if s.startswith(f"{key} ") or s.startswith(f"{key}=") or s == f"[[{coll}.{key}]]":
            return n + 1
    return start
