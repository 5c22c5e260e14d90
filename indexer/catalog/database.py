"""Opening the catalog database: the URL, the engine, SQLite's pragmas and the schema.

`Catalog` joins the catalog's parts (collections, documents and chunks, the embedding cache,
API keys) over one opened database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from indexer.errors import CatalogError, is_disk_full, storage_error
from indexer.lexical_store import LexicalIndex, lexical_index_for, pg_metadata
from indexer.private_files import make_private_file
from indexer.schema import metadata

from .change_signals import change_signal, install_pg_triggers
from .collections import CollectionTables
from .documents import DocumentTables
from .embedding_cache import EmbeddingCacheTables
from .keys import KeyTables
from .read_cache import CatalogReadCache
from .vector_files import VectorFileTables

_DIALECTS = ("sqlite", "postgresql")
# Any constant shared by every replica: serialises schema creation when several start at once.
_SCHEMA_LOCK_KEY = 0x7261_6773  # "rags"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL is durable across process crashes
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _disk_full(context: ExceptionContext) -> None:
    """Every statement's SQLITE_FULL / ENOSPC becomes one StorageFull, wherever it happens
    (a chunk insert, the embedding cache, a checkpoint)."""
    if is_disk_full(context.original_exception):
        raise storage_error(context.original_exception, "cannot write the catalog")


def safe_url(url: str) -> str:
    """The URL without its credentials, fit for an error message."""
    return url.split("@")[-1] if "@" in url else url


def open_engine(url: str) -> Engine:
    """An engine for a supported catalog URL, with the schema created; CatalogError if not."""
    try:
        dialect = make_url(url).get_backend_name()
    except ArgumentError as exc:
        raise CatalogError(f"invalid catalog URL {safe_url(url)!r}: {exc}") from exc
    if dialect not in _DIALECTS:
        raise CatalogError(
            f"unsupported catalog database {dialect!r}: use sqlite:/// or postgresql+psycopg://"
        )
    is_sqlite = dialect == "sqlite"
    database = make_url(url).database
    if is_sqlite and database and database != ":memory:" and not database.startswith("file:"):
        make_private_file(Path(database))
    try:
        engine = create_engine(url, future=True, pool_pre_ping=not is_sqlite)
    except ImportError as exc:  # the driver lives in an optional extra
        raise CatalogError(
            f"no driver for {dialect} ({exc.name}): pip install 'ragsearch[scale]'"
        ) from exc
    if is_sqlite:
        event.listen(engine, "connect", _sqlite_pragmas)
    event.listen(engine, "handle_error", _disk_full)
    try:
        _create_schema(engine, is_sqlite)
    except SQLAlchemyError as exc:
        raise CatalogError(f"cannot open the catalog at {safe_url(url)}: {exc}") from exc
    return engine


def _create_schema(engine: Engine, is_sqlite: bool) -> None:
    with engine.begin() as conn:
        if not is_sqlite:
            # CREATE TABLE IF NOT EXISTS still races between replicas starting together.
            conn.execute(select(func.pg_advisory_xact_lock(_SCHEMA_LOCK_KEY)))
        metadata.create_all(conn)
        if not is_sqlite:
            pg_metadata.create_all(conn)
            install_pg_triggers(conn)


class Catalog(CollectionTables, DocumentTables, EmbeddingCacheTables, KeyTables, VectorFileTables):
    """Typed operations over the catalog database. Thread-safe through the engine's pool.

    SQLite (one file, FTS5 lexical index) or PostgreSQL (shared by replicas, tsvector lexical
    index). Ids come from AUTOINCREMENT on SQLite and sequences on PostgreSQL: neither reuses
    an id, which vector ids rely on.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        self.engine: Engine = open_engine(url)
        self.lexical: LexicalIndex = lexical_index_for(self.engine.dialect.name)
        self.reads = CatalogReadCache(change_signal(self.engine))

    def close(self) -> None:
        self.reads.close()
        self.engine.dispose()

    def checkpoint(self) -> None:
        """Copy committed pages from SQLite's `-wal` file into the database file.

        While any connection holds the database open SQLite never checkpoints on close, and
        its automatic checkpoint waits for 1,000 pages: commits could sit in the WAL, where a
        damaged `-wal` file loses them. PASSIVE never blocks readers or writers; it copies
        what no open read transaction still needs. No-op on PostgreSQL.
        """
        if not self.is_sqlite:
            return
        with self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").all()
