"""What changed among a collection's chunks since a reader last looked.

A serving reader applies changes to the vectors it holds instead of reloading them:
- added chunks are those with an id above the highest it holds (`ids_after`): chunk ids only
  grow, and one writer at a time (the writer lock) commits them in id order;
- deleted chunks are logged as tombstones by a trigger on `chunks`, in the deleting
  transaction, whatever code path deletes them (`tombstones_after`).
The log keeps the last `KEEP_TOMBSTONES` entries; a reader further behind than that falls
back to a full reconcile. Reads go through the driver's cursor: at a million chunks building
SQLAlchemy rows costs seconds, a plain cursor a few hundred milliseconds.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Index,
    MetaData,
    Table,
    select,
)

from indexer.schema import IdType

IdArray = np.ndarray[Any, np.dtype[np.int64]]

KEEP_TOMBSTONES = 200_000  # log entries kept; older readers reconcile in full
_ADVISORY_KEY = 0x7261_6774  # serialises trigger creation between PostgreSQL replicas

log_metadata = MetaData()

chunk_tombstones = Table(
    "chunk_tombstones",
    log_metadata,
    Column("seq", IdType, primary_key=True, autoincrement=True),
    Column("collection_id", IdType, nullable=False),
    Column("chunk_id", IdType, nullable=False),
    Index("ix_chunk_tombstones_collection_seq", "collection_id", "seq"),
    sqlite_autoincrement=True,  # a pruned log never hands out an old seq again
)

_SQLITE_TRIGGER = """
CREATE TRIGGER IF NOT EXISTS chunks_tombstone AFTER DELETE ON chunks
BEGIN
    INSERT INTO chunk_tombstones (collection_id, chunk_id) VALUES (old.collection_id, old.id);
END
"""
_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION ragsearch_chunk_tombstone() RETURNS trigger AS $$
BEGIN
    INSERT INTO chunk_tombstones (collection_id, chunk_id) VALUES (OLD.collection_id, OLD.id);
    RETURN OLD;
END
$$ LANGUAGE plpgsql
"""
_PG_TRIGGER = """
CREATE OR REPLACE TRIGGER chunks_tombstone AFTER DELETE ON chunks
FOR EACH ROW EXECUTE FUNCTION ragsearch_chunk_tombstone()
"""


def install(engine: Engine) -> None:
    """Create the tombstone log and its trigger if missing (idempotent, at every open)."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_ADVISORY_KEY})")
        log_metadata.create_all(conn)
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(_PG_FUNCTION)
            conn.exec_driver_sql(_PG_TRIGGER)
        else:
            conn.exec_driver_sql(_SQLITE_TRIGGER)


def _fetch_ids(conn: Connection, sql: str, params: Sequence[int]) -> IdArray:
    """One integer column through the raw DB-API cursor, as an int64 array."""
    if conn.dialect.name == "postgresql":
        sql = sql.replace("?", "%s")
    cursor: Any = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, tuple(params))
        return np.fromiter(itertools.chain.from_iterable(cursor), dtype=np.int64)
    finally:
        cursor.close()


def chunk_ids(engine: Engine, collection_id: int) -> IdArray:
    """Every chunk id of a collection, ascending."""
    with engine.connect() as conn:
        return _fetch_ids(
            conn, "SELECT id FROM chunks WHERE collection_id = ? ORDER BY id", (collection_id,)
        )


def ids_after(engine: Engine, collection_id: int, after: int) -> IdArray:
    """Chunk ids of a collection above `after`, ascending."""
    with engine.connect() as conn:
        return _fetch_ids(
            conn,
            "SELECT id FROM chunks WHERE collection_id = ? AND id > ? ORDER BY id",
            (collection_id, after),
        )


def latest_tombstone(engine: Engine) -> int:
    """The newest tombstone's sequence number (0 when none)."""
    with engine.connect() as conn:
        value = conn.execute(
            select(chunk_tombstones.c.seq).order_by(chunk_tombstones.c.seq.desc()).limit(1)
        ).scalar()
    return int(value or 0)


def tombstones_after(engine: Engine, collection_id: int, after: int) -> tuple[IdArray, int]:
    """Ids of the collection's chunks deleted after tombstone `after`, and the newest seq."""
    with engine.connect() as conn:
        rows = _fetch_ids(
            conn,
            "SELECT seq, chunk_id FROM chunk_tombstones WHERE collection_id = ? AND seq > ? "
            "ORDER BY seq",
            (collection_id, after),
        ).reshape(-1, 2)
    newest = int(rows[-1, 0]) if len(rows) else after
    return rows[:, 1].copy(), newest


def is_retained(engine: Engine, seq: int) -> bool:
    """Whether every tombstone after `seq` is still in the log (see `prune`)."""
    return seq >= latest_tombstone(engine) - KEEP_TOMBSTONES


def prune(engine: Engine) -> None:
    """Drop tombstones older than the newest `KEEP_TOMBSTONES` (the writer calls this)."""
    horizon = latest_tombstone(engine) - KEEP_TOMBSTONES
    if horizon > 0:
        with engine.begin() as conn:
            conn.execute(chunk_tombstones.delete().where(chunk_tombstones.c.seq <= horizon))


def sorted_difference(values: IdArray, other: IdArray) -> IdArray:
    """The elements of sorted `values` that are not in sorted `other` (by binary search)."""
    if len(other) == 0 or len(values) == 0:
        return values
    at = np.searchsorted(other, values).clip(max=len(other) - 1)
    kept: IdArray = values[other[at] != values]
    return kept
