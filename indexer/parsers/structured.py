"""JSON and JSON Lines (one section per record) and CSV (one Markdown table)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from indexer.errors import ParseError
from indexer.parsers.decoding import decode_text
from indexer.parsers.markup import markdown_table
from indexer.parsers.sections import SectionBuilder, clean_heading, normalize_text
from indexer.records import ParsedDocument

JSON_MEDIA_TYPE = "application/json"
JSONL_MEDIA_TYPE = "application/x-ndjson"
CSV_MEDIA_TYPE = "text/csv"

TEXT_FIELDS = ("text", "content", "body", "abstract")
HEADING_FIELDS = ("title", "name")
_CSV_DELIMITERS = ",;\t|"
_SNIFF_CHARS = 64 * 1024


def _scalar(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _flatten(value: Any, prefix: str, out: list[str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    elif isinstance(value, list):
        if all(not isinstance(item, dict | list) for item in value):
            out.append(f"{prefix}: {', '.join(_scalar(item) for item in value)}")
        else:
            for index, item in enumerate(value):
                _flatten(item, f"{prefix}.{index}" if prefix else str(index), out)
    else:
        out.append(f"{prefix}: {_scalar(value)}" if prefix else _scalar(value))


def _text_value(value: Any) -> str | None:
    if isinstance(value, str):
        return value if value.strip() else None
    # Some corpora store a text as a list of sentences.
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return " ".join(value)
    return None


def _add_record(builder: SectionBuilder, record: Any) -> None:
    if not isinstance(record, dict):
        lines: list[str] = []
        _flatten(record, "", lines)
        builder.add("\n".join(lines))
        return
    heading = next(
        (clean_heading(record[k]) for k in HEADING_FIELDS if isinstance(record.get(k), str)), ""
    )
    text = next((t for k in TEXT_FIELDS if (t := _text_value(record.get(k))) is not None), None)
    if text is not None:
        builder.add(normalize_text(text), (heading,) if heading else ())
        return
    lines = []
    _flatten(record, "", lines)
    builder.add("\n".join(lines), (heading,) if heading else ())


def _records_of(value: Any) -> tuple[list[Any], dict[str, Any]]:
    """Records inside a JSON document, plus top-level scalars worth keeping as metadata."""
    if isinstance(value, list):
        return value, {}
    if isinstance(value, dict) and not any(k in value for k in TEXT_FIELDS):
        lists = [v for v in value.values() if isinstance(v, list) and v]
        scalars = {k: v for k, v in value.items() if isinstance(v, str | int | float | bool)}
        # {"data": [...], "version": "1"} is a wrapper around its records.
        wrapper = len(lists) == 1 and len(scalars) == len(value) - 1
        if wrapper and all(isinstance(item, dict) for item in lists[0]):
            return lists[0], scalars
    return [value], {}


def parse_json(data: bytes) -> ParsedDocument:
    """Parse JSON: each object of a top-level list (or a single object) is one section.

    A record's `text`/`content`/`body`/`abstract` field is its text, under its
    `title`/`name` as heading; other records are rendered as dotted `key: value` lines.
    """
    try:
        value = json.loads(decode_text(data))
    except json.JSONDecodeError as exc:
        raise ParseError(
            f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc
    except RecursionError as exc:
        raise ParseError("JSON is nested too deeply to read") from exc
    records, metadata = _records_of(value)
    builder = SectionBuilder(JSON_MEDIA_TYPE)
    for record in records:
        _add_record(builder, record)
    return builder.build(
        metadata={**metadata, "records": len(records)}, empty_message="JSON has no text"
    )


def parse_jsonl(data: bytes) -> ParsedDocument:
    """Parse JSON Lines: one record per non-blank line, with the same rules as JSON."""
    builder = SectionBuilder(JSONL_MEDIA_TYPE)
    count = 0
    for number, line in enumerate(decode_text(data).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ParseError(
                f"invalid JSON on line {number}: {exc.msg} (column {exc.colno})"
            ) from exc
        except RecursionError as exc:
            raise ParseError(f"JSON on line {number} is nested too deeply to read") from exc
        _add_record(builder, record)
        count += 1
    return builder.build(metadata={"records": count}, empty_message="JSON Lines file has no text")


def _delimiter(sample: str) -> str:
    try:
        return csv.Sniffer().sniff(sample, delimiters=_CSV_DELIMITERS).delimiter
    except csv.Error:
        pass
    # The sniffer gives up on ragged rows; the header line is the best remaining clue.
    header = next((line for line in sample.splitlines() if line.strip()), "")
    counts = {d: header.count(d) for d in _CSV_DELIMITERS}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def parse_csv(data: bytes) -> ParsedDocument:
    """Parse CSV into one Markdown table; the first row is its header.

    The delimiter (comma, semicolon, tab or pipe) is sniffed; ragged rows are padded to the
    widest row. Chunking splits a long table at rows and repeats the header in every piece.
    """
    text = normalize_text(decode_text(data))
    delimiter = _delimiter(text[:_SNIFF_CHARS])
    builder = SectionBuilder(CSV_MEDIA_TYPE)
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    except csv.Error as exc:
        raise ParseError(f"invalid CSV: {exc}") from exc
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows:
        raise ParseError("CSV has no rows")
    builder.add(markdown_table(rows), kind="table")
    return builder.build(
        metadata={
            "columns": [cell.strip() for cell in rows[0]],
            "rows": len(rows) - 1,
            "delimiter": delimiter,
        },
        empty_message="CSV has no text",
    )
