"""Parsing shared by the object-valued config keys (``redis:tls``, ``redis:metrics``)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


def block_entries(
    raw: Any, key: str, fields: Mapping[str, str], problems: list[str]
) -> dict[str, Any] | None:
    """The known entries of the object ``raw`` (a mapping, or its JSON text as the engine hands
    structured config over), by field name. A value that is no object and each unknown field
    are appended to ``problems`` under their full key; None when ``raw`` is no object."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            raw = None
    if not isinstance(raw, dict):
        problems.append(f"{key}: must be an object with keys {', '.join(fields)}")
        return None
    entries: dict[str, Any] = {}
    for name, value in raw.items():
        if name in fields:
            entries[name] = value
        else:
            problems.append(f"{key}.{name}: unknown key; allowed are {', '.join(fields)}")
    return entries


def as_bool(value: Any) -> bool | None:
    """``true``/``false`` in any case, or a bool; None for anything else."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    return text == "true" if text in ("true", "false") else None
