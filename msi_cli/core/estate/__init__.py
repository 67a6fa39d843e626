"""Estates: a whole simulated Azure declared in one file (`msi apply`), written back out (`msi
export`), recreated from what `az ... -o json` printed (`msi import az`), and moves rehearsed on a
copy of the state (`--what-if`).

- schema: the file format, read from TOML or JSON into specs that know their line (lines: where);
- plan: what applying a file would change, matched by name against a state (changes: the plan;
  matching: names and references, the planner's base);
- apply: the plan carried out through the lifecycle, roles, groups and federation operations;
- export: a state as an estate document;
- azimport: az's JSON as an estate document (azfiles: finding the files, which az command printed each);
- whatif: a move run on a copy of the state, and what it would break.
"""
