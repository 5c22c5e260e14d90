"""Document metadata from the command line: `--metadata key=value` and a JSON sidecar file."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from indexer.errors import InputError

__all__ = ["metadata_from_options", "parse_pair"]


def parse_pair(pair: str) -> tuple[str, Any]:
    """`key=value` → (key, value); a value that is a JSON number, true, false or null stays
    typed (so `year=2024` compares as a number in filters), anything else is a string."""
    key, sep, raw = pair.partition("=")
    key = key.strip()
    if not sep or not key:
        raise InputError(f"metadata {pair!r}: expected KEY=VALUE")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        return key, raw
    return key, value if value is None or isinstance(value, bool | int | float) else raw


def metadata_from_options(pairs: Sequence[str], sidecar: Path | None) -> dict[str, Any]:
    """The sidecar's JSON object (if any) with the `key=value` pairs laid over it."""
    metadata: dict[str, Any] = {}
    if sidecar is not None:
        try:
            loaded = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise InputError(f"metadata file {sidecar}: {exc}") from exc
        if not isinstance(loaded, dict):
            raise InputError(f"metadata file {sidecar}: expected a JSON object")
        metadata.update(loaded)
    metadata.update(parse_pair(p) for p in pairs)
    return metadata
