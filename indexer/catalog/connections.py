"""What the catalog's parts share: the engine, the lexical index, and connections whose
database errors become `CatalogError` in this one place."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from indexer.errors import CatalogError
from indexer.lexical_store import LexicalIndex

from .read_cache import CatalogReadCache


@contextmanager
def database_errors_mapped() -> Iterator[None]:
    """SQLAlchemy errors not handled inside the block become `CatalogError` (a 503)."""
    try:
        yield
    except SQLAlchemyError as exc:
        cause = getattr(exc, "orig", None) or exc
        raise CatalogError(f"the catalog database failed: {cause}") from exc


class Tables:
    """Base of the catalog's parts: reads through `connect()`, writes through `transaction()`."""

    engine: Engine
    lexical: LexicalIndex
    reads: CatalogReadCache  # the hot reads, kept until the database changes

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with database_errors_mapped(), self.engine.connect() as conn:
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with database_errors_mapped(), self.engine.begin() as conn:
            yield conn
        self.reads.changed()  # this process's own commit shows at once, not on its NOTIFY
