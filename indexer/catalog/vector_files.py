"""Checksums of saved vector files, kept in the catalog beside each collection's revision."""

from __future__ import annotations

from sqlalchemy import delete, insert, select

from indexer.schema import vector_files

from .connections import Tables
from .rows import now


class VectorFileTables(Tables):
    """The catalog's record of what each collection's saved vector file should hash to."""

    def vector_checksum(self, collection_id: int) -> str | None:
        """The sha256 recorded at the last save, or None (never saved, or an older catalog)."""
        with self.connect() as conn:
            found = conn.execute(
                select(vector_files.c.sha256).where(vector_files.c.collection_id == collection_id)
            ).scalar()
        return None if found is None else str(found)

    def record_vector_checksum(self, collection_id: int, sha256: str) -> None:
        with self.transaction() as conn:
            conn.execute(delete(vector_files).where(vector_files.c.collection_id == collection_id))
            conn.execute(
                insert(vector_files).values(
                    collection_id=collection_id, sha256=sha256, saved_at=now()
                )
            )

    def forget_vector_checksum(self, collection_id: int) -> None:
        with self.transaction() as conn:
            conn.execute(delete(vector_files).where(vector_files.c.collection_id == collection_id))
