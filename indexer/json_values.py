"""JSON values callers send (metadata, filters, query text), checked once at the boundary.

SQLite's JSON functions and every JSON encoder downstream choke on what Python's `json`
module lets through: NaN and infinities, integers beyond 64 bits, lone UTF-16 surrogates,
NUL inside keys, nesting deep enough to exhaust the stack. A value that passes here can be
stored, filtered on and echoed back.
"""

from __future__ import annotations

import json
import math
from typing import Any

from indexer.errors import InputError

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "MAX_ID",
    "MAX_METADATA_DEPTH",
    "check_json_value",
    "check_text",
    "parse_json_object",
]

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
# Ids and offsets callers send: the largest integer every JSON parser reads exactly (a JSON
# Schema `maximum` of 2**63 - 1 is a float to most tools). Catalog ids never come near it.
MAX_ID = 2**53 - 1
MAX_METADATA_DEPTH = 16


def check_text(text: str, where: str) -> None:
    """Refuse text that cannot be encoded as UTF-8 (a lone surrogate such as `\\ud800`)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = text[exc.start]
        raise InputError(
            f"{where}: contains an invalid character (lone surrogate U+{ord(bad):04X})"
        ) from exc


def check_json_value(value: Any, where: str, *, max_depth: int = MAX_METADATA_DEPTH) -> None:
    """Refuse anything JSON in SQLite cannot hold; `where` names the value in the message.

    Walks iteratively, so a deeply nested value fails with a message, not a RecursionError.
    """
    pending: list[tuple[Any, str, int]] = [(value, where, 0)]
    while pending:
        item, path, depth = pending.pop()
        if depth > max_depth:
            raise InputError(f"{path}: nested deeper than {max_depth} levels")
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise InputError(f"{path}: keys must be strings")
                check_text(key, f"{path}: key")
                if "\x00" in key or not key:
                    raise InputError(f"{path}: key {key!r} is empty or contains NUL")
                pending.append((child, f"{path}.{key}", depth + 1))
        elif isinstance(item, list):
            pending.extend((child, f"{path}[{i}]", depth + 1) for i, child in enumerate(item))
        elif isinstance(item, str):
            check_text(item, path)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int):
            if not INT64_MIN <= item <= INT64_MAX:
                raise InputError(f"{path}: integer {item} does not fit in 64 bits")
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise InputError(f"{path}: {item} is not a number JSON can store")
        else:
            raise InputError(f"{path}: {type(item).__name__} is not a JSON value")


def _refuse_constant(name: str) -> Any:
    raise InputError(f"{name} is not valid JSON")


def parse_json_object(raw: str, where: str) -> dict[str, Any]:
    """Parse `raw` as a JSON object of storable values (see `check_json_value`)."""
    try:
        value = json.loads(raw, parse_constant=_refuse_constant)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: not valid JSON ({exc.msg})") from exc
    except RecursionError as exc:
        raise InputError(f"{where}: nested too deeply") from exc
    except InputError as exc:
        raise InputError(f"{where}: {exc.message}") from exc
    if not isinstance(value, dict):
        raise InputError(f"{where}: expected a JSON object")
    check_json_value(value, where)
    return value
