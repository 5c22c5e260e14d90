"""Metadata filters (`$eq`, `$ne`, `$in`, `$gte`, `$lte`, `$and`, `$or`) compiled to SQL.

A filter is a JSON object. Keys are document fields (`source`, `title`, `media_type`,
`document_id`) or metadata keys (bare, or as `metadata.KEY`). A bare value means `$eq`.
Filters are applied in the catalog, so a filter that matches nothing returns nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, false, not_, or_, true

from indexer.errors import InputError
from indexer.json_values import check_json_value
from indexer.schema import documents

_DOCUMENT_FIELDS = {
    "source": documents.c.source,
    "title": documents.c.title,
    "media_type": documents.c.media_type,
    "document_id": documents.c.id,
}
_OPERATORS = {"$eq", "$ne", "$in", "$gte", "$lte", "$gt", "$lt"}
_Scalar = str | int | float | bool
MAX_DEPTH = 8
MAX_TERMS = 1024


def compile_filter(
    spec: Any, *, max_terms: int = MAX_TERMS, max_depth: int = MAX_DEPTH
) -> ColumnElement[bool]:
    """Turn a filter object into a SQL condition over the `documents` table.

    Raises `InputError` saying what is wrong for anything malformed, or for a filter with
    more than `max_terms` conditions (`$in` values count one each) or `$and`/`$or` nested
    deeper than `max_depth`: both are refused before any SQL is built.
    """
    if spec is None:
        return true()
    # Each $and/$or level is an object inside a list (two JSON levels); this loose bound,
    # checked without recursion, stops absurd nesting before `_compile` recurses into it.
    check_json_value(spec, "filter", max_depth=4 * max_depth + 4)
    terms = _count_terms(spec)
    if terms > max_terms:
        raise InputError(f"filter: {terms:,} conditions; the limit is {max_terms:,}")
    return _compile(spec, "filter", 0, max_depth)


def _count_terms(spec: Any) -> int:
    """Conditions in a (depth-checked) filter: one per operator, one per `$in` value."""
    count = 0
    pending = [spec]
    while pending:
        item = pending.pop()
        if not isinstance(item, dict):
            continue
        for key, value in item.items():
            if key in ("$and", "$or") and isinstance(value, list):
                pending.extend(value)
            elif key == "$in" and isinstance(value, list):
                count += len(value)
            elif isinstance(value, dict) and not key.startswith("$"):
                pending.append(value)
            else:
                count += 1
    return count


def _compile(spec: Any, where: str, depth: int, max_depth: int) -> ColumnElement[bool]:
    if depth > max_depth:
        raise InputError(f"{where}: nested deeper than {max_depth} levels")
    if not isinstance(spec, dict):
        raise InputError(f"{where}: expected an object, got {type(spec).__name__}")
    if not spec:
        return true()
    clauses: list[ColumnElement[bool]] = []
    for key, value in spec.items():
        path = f"{where}.{key}"
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise InputError(f"{path}: expected a non-empty list of filters")
            parts = [_compile(v, f"{path}[{i}]", depth + 1, max_depth) for i, v in enumerate(value)]
            clauses.append(and_(*parts) if key == "$and" else or_(*parts))
        elif key.startswith("$"):
            raise InputError(f"{path}: unknown operator {key!r} at this level; use $and or $or")
        else:
            clauses.append(_field_condition(key, value, path))
    return and_(*clauses)


def _field_condition(key: str, value: Any, path: str) -> ColumnElement[bool]:
    if isinstance(value, dict):
        if not value:
            raise InputError(f"{path}: empty condition")
        unknown = set(value) - _OPERATORS
        if unknown:
            raise InputError(
                f"{path}: unknown operator {sorted(unknown)[0]!r}; "
                f"use one of {', '.join(sorted(_OPERATORS))}"
            )
        return and_(*(_operator(key, op, arg, f"{path}.{op}") for op, arg in value.items()))
    return _operator(key, "$eq", value, path)


def _operator(key: str, op: str, arg: Any, path: str) -> ColumnElement[bool]:
    if op == "$in":
        if not isinstance(arg, list):
            raise InputError(f"{path}: expected a list")
        if not arg:
            return false()
        by_kind: dict[type, list[_Scalar]] = {}
        for item in arg:
            _check_scalar(item, path)
            kind = bool if isinstance(item, bool) else str if isinstance(item, str) else float
            by_kind.setdefault(kind, []).append(item)
        # One IN per value type: a chain of ORs overflows SQLite's expression depth.
        return or_(*(_column_for(key, items[0]).in_(items) for items in by_kind.values()))
    _check_scalar(arg, path)
    column: ColumnElement[Any] = _column_for(key, arg)
    if op == "$eq":
        return column == arg  # type: ignore[no-any-return]
    if op == "$ne":
        # A missing key is "not equal" too, as a user would expect.
        return or_(column.is_(None), not_(column == arg))
    if isinstance(arg, bool):
        raise InputError(f"{path}: {op} needs a number or a string, not a boolean")
    comparisons: dict[str, ColumnElement[bool]] = {
        "$gte": column >= arg,
        "$lte": column <= arg,
        "$gt": column > arg,
        "$lt": column < arg,
    }
    return comparisons[op]


def _check_scalar(value: Any, path: str) -> None:
    if not isinstance(value, _Scalar):
        raise InputError(
            f"{path}: expected a string, number or boolean, got {type(value).__name__}"
        )


def _column_for(key: str, sample: _Scalar) -> Any:
    if key in _DOCUMENT_FIELDS:
        return _DOCUMENT_FIELDS[key]
    name = key.removeprefix("metadata.")
    if not name:
        raise InputError("filter: empty metadata key")
    element = documents.c.metadata[name]
    if isinstance(sample, bool):
        return element.as_boolean()
    if isinstance(sample, int | float):
        return element.as_float()
    return element.as_string()
