"""Files of chunks with their vectors, for `ragsearch import` and `ragsearch export`.

One row per chunk: `source` (the document it belongs to), `text`, `vector` (list of floats),
optional `metadata` (an object, the document's) and optional `model` (the embedding model
that made the vector). A document's rows are consecutive, in chunk order; its metadata is
that of its first row. JSON Lines (`.jsonl`, `.ndjson`) or Parquet (`.parquet`, which needs
pyarrow). This is the shape Chroma, LanceDB and Milvus exports reduce to with one mapping.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from indexer.errors import InputError
from indexer.providers.base import Vectors

JSONL_SUFFIXES = (".jsonl", ".ndjson")
PARQUET_SUFFIXES = (".parquet", ".pq")
_PARQUET_BATCH = 4096


@dataclass(frozen=True, slots=True)
class VectorRow:
    """One chunk with its vector, as read from or written to a file."""

    source: str
    text: str
    vector: Vectors
    metadata: dict[str, Any]
    model: str | None


@dataclass(frozen=True, slots=True)
class VectorDocument:
    """Consecutive rows of one source: a document's chunks with their vectors, in order."""

    source: str
    texts: list[str]
    vectors: Vectors  # (chunks, dimensions) float32
    metadata: dict[str, Any]
    models: frozenset[str]


def file_format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return "jsonl"
    if suffix in PARQUET_SUFFIXES:
        return "parquet"
    raise InputError(f"{path.name}: use a .jsonl or .parquet file")


def read_rows(path: Path) -> Iterator[VectorRow]:
    """The rows of a JSONL or Parquet file, checked one by one."""
    if not path.is_file():
        raise InputError(f"no such file: {path}")
    if file_format(path) == "parquet":
        yield from _read_parquet(path)
        return
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path.name} line {number}: not JSON ({exc.msg})") from exc
            yield _row(raw, f"{path.name} line {number}")


def _row(raw: Any, where: str) -> VectorRow:
    if not isinstance(raw, dict):
        raise InputError(f"{where}: expected an object with source, text and vector")
    source, text, vector = raw.get("source"), raw.get("text"), raw.get("vector")
    if not isinstance(source, str) or not source:
        raise InputError(f"{where}: `source` must be a non-empty string")
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"{where}: `text` must be a non-empty string")
    metadata = raw.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise InputError(f"{where}: `metadata` must be an object")
    model = raw.get("model")
    if model is not None and not isinstance(model, str):
        raise InputError(f"{where}: `model` must be a string")
    return VectorRow(source, text, _vector(vector, where), metadata, model)


def _vector(value: Any, where: str) -> Vectors:
    try:
        array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{where}: `vector` must be a list of numbers") from exc
    if array.ndim != 1 or len(array) == 0:
        raise InputError(f"{where}: `vector` must be a non-empty list of numbers")
    if not np.all(np.isfinite(array)):
        raise InputError(f"{where}: `vector` holds NaN or infinity")
    return array


def _read_parquet(path: Path) -> Iterator[VectorRow]:
    try:
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise InputError("reading Parquet needs pyarrow: pip install 'ragsearch[scale]'") from exc
    try:
        reader = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises its own error tree for a broken file
        raise InputError(f"{path.name}: not a readable Parquet file ({exc})") from exc
    names = set(reader.schema_arrow.names)
    absent = {"source", "text", "vector"} - names
    if absent:
        raise InputError(f"{path.name}: missing column(s) {', '.join(sorted(absent))}")
    at = 0
    for batch in reader.iter_batches(batch_size=_PARQUET_BATCH):
        column = {name: batch.column(name) for name in batch.schema.names}
        sources, texts = column["source"].to_pylist(), column["text"].to_pylist()
        none = [None] * batch.num_rows
        metadata = column["metadata"].to_pylist() if "metadata" in column else none
        models = column["model"].to_pylist() if "model" in column else none
        # Vectors straight from the list column's buffer: no Python float per element.
        offsets = column["vector"].offsets.to_numpy()
        flat = column["vector"].flatten().to_numpy(zero_copy_only=False)
        for i in range(batch.num_rows):
            raw = {
                "source": sources[i],
                "text": texts[i],
                "vector": flat[offsets[i] : offsets[i + 1]],
                "metadata": _metadata(metadata[i]),
                "model": models[i],
            }
            yield _row(raw, f"{path.name} row {at + i + 1}")
        at += batch.num_rows


def _metadata(value: Any) -> Any:
    """Parquet metadata is a JSON string (a struct column would fix one schema for all)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value  # refused by `_row` with its row number
    return value


def documents(rows: Iterable[VectorRow]) -> Iterator[VectorDocument]:
    """Group consecutive rows by source; a source that comes back later is refused."""
    finished: set[str] = set()
    current: list[VectorRow] = []
    for row in rows:
        if current and row.source != current[0].source:
            finished.add(current[0].source)
            yield _document(current)
            current = []
        if row.source in finished:
            raise InputError(f"the rows of {row.source!r} are not consecutive; sort the file")
        current.append(row)
    if current:
        yield _document(current)


def _document(rows: list[VectorRow]) -> VectorDocument:
    dims = {len(r.vector) for r in rows}
    if len(dims) > 1:
        raise InputError(f"{rows[0].source!r}: vectors of different sizes {sorted(dims)}")
    return VectorDocument(
        source=rows[0].source,
        texts=[r.text for r in rows],
        vectors=np.stack([r.vector for r in rows]),
        metadata=rows[0].metadata,
        models=frozenset(r.model for r in rows if r.model),
    )


def write_jsonl(out: IO[str], rows: Iterable[VectorRow]) -> int:
    """Write rows as JSON Lines; returns how many."""
    count = 0
    for row in rows:
        record = {
            "source": row.source,
            "text": row.text,
            "vector": [round(float(x), 7) for x in row.vector],
            "metadata": row.metadata,
            "model": row.model,
        }
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
        count += 1
    return count


def write_parquet(path: Path, rows: Iterable[VectorRow]) -> int:
    """Write rows as Parquet (metadata as a JSON string column); returns how many."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise InputError("writing Parquet needs pyarrow: pip install 'ragsearch[scale]'") from exc
    schema = pa.schema(
        [
            ("source", pa.string()),
            ("text", pa.string()),
            ("vector", pa.list_(pa.float32())),
            ("metadata", pa.string()),
            ("model", pa.string()),
        ]
    )
    count = 0
    with pq.ParquetWriter(path, schema) as writer:
        batch: list[VectorRow] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= _PARQUET_BATCH:
                count += _write_batch(writer, schema, batch)
                batch = []
        if batch:
            count += _write_batch(writer, schema, batch)
    return count


def _write_batch(writer: Any, schema: Any, rows: list[VectorRow]) -> int:
    import pyarrow as pa

    table = pa.table(
        {
            "source": [r.source for r in rows],
            "text": [r.text for r in rows],
            "vector": [np.asarray(r.vector, dtype=np.float32) for r in rows],
            "metadata": [json.dumps(r.metadata, ensure_ascii=False) for r in rows],
            "model": [r.model for r in rows],
        },
        schema=schema,
    )
    writer.write_table(table)
    return len(rows)
