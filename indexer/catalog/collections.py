"""Collections in the catalog: create, find, list, drop, and the revision every write bumps."""

from __future__ import annotations

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from indexer.errors import Conflict, InputError, NotFound
from indexer.records import Collection, CollectionSpec
from indexer.schema import chunks, collections, documents

from .connections import Tables
from .rows import collection_from, now

_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


def validate_collection_name(name: str) -> str:
    if not name or len(name) > 128 or not set(name) <= _NAME_CHARS or name[0] in "-.":
        raise InputError(
            f"invalid collection name {name!r}: use 1-128 letters, digits, '_', '-' or '.'"
        )
    return name


def bump_revision(conn: Connection, collection_id: int) -> None:
    """Mark a collection changed, so readers know to refresh what they derived from it."""
    conn.execute(
        update(collections)
        .where(collections.c.id == collection_id)
        .values(revision=collections.c.revision + 1, updated_at=now())
    )


class CollectionTables(Tables):
    """The catalog's collection operations (part of `Catalog`)."""

    def create_collection(self, spec: CollectionSpec) -> Collection:
        validate_collection_name(spec.name)
        at = now()
        with self.transaction() as conn:
            try:
                result = conn.execute(
                    insert(collections).values(
                        name=spec.name,
                        embedder_provider=spec.embedder_provider,
                        embedder_model=spec.embedder_model,
                        dimensions=spec.dimensions,
                        chunk_tokens=spec.chunk_tokens,
                        overlap_sentences=spec.overlap_sentences,
                        revision=0,
                        created_at=at,
                        updated_at=at,
                    )
                )
            except IntegrityError as exc:
                raise Conflict(f"collection {spec.name!r} already exists") from exc
            pk = result.inserted_primary_key
            assert pk is not None
            self.lexical.create(conn, int(pk[0]))
        return self.get_collection(spec.name)

    def find_collection(self, name: str) -> Collection | None:
        return self.reads.get(("collection", name), lambda: self._read_collection(name))

    def _read_collection(self, name: str) -> Collection | None:
        with self.connect() as conn:
            row = conn.execute(select(collections).where(collections.c.name == name)).first()
        return None if row is None else collection_from(row._mapping)

    def get_collection(self, name: str) -> Collection:
        found = self.find_collection(name)
        if found is None:
            raise NotFound(f"collection {name!r} does not exist")
        return found

    def list_collections(self) -> list[Collection]:
        with self.connect() as conn:
            rows = conn.execute(select(collections).order_by(collections.c.name)).all()
        return [collection_from(r._mapping) for r in rows]

    def drop_collection(self, name: str) -> Collection:
        found = self.get_collection(name)
        with self.transaction() as conn:
            conn.execute(delete(chunks).where(chunks.c.collection_id == found.id))
            conn.execute(delete(documents).where(documents.c.collection_id == found.id))
            conn.execute(delete(collections).where(collections.c.id == found.id))
            self.lexical.drop(conn, found.id)
        return found

    def revision(self, collection_id: int) -> int:
        with self.connect() as conn:
            value = conn.execute(
                select(collections.c.revision).where(collections.c.id == collection_id)
            ).scalar_one_or_none()
        if value is None:
            raise NotFound(f"collection #{collection_id} does not exist")
        return int(value)
