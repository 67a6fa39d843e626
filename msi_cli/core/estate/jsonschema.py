"""The estate format's JSON Schema, shipped as package data (estate.schema.json)."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any


def schema() -> dict[str, Any]:
    text = resources.files("msi_cli.core.estate").joinpath("estate.schema.json").read_text(encoding="utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded
