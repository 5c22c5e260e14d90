"""API keys in the catalog: stored hashed, listed, revoked. Policy lives in `service.http.auth`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import insert, select, update
from sqlalchemy.dialects import postgresql, sqlite

from indexer.records import ApiKey, NewApiKey
from indexer.schema import api_keys, key_token_spend

from .connections import Tables
from .rows import api_key_from, now


class KeyTables(Tables):
    """The catalog's API-key operations (part of `Catalog`)."""

    def add_key(self, key: NewApiKey) -> ApiKey:
        with self.transaction() as conn:
            result = conn.execute(
                insert(api_keys).values(
                    name=key.name,
                    prefix=key.prefix,
                    key_sha256=key.key_sha256,
                    scopes=list(key.scopes),
                    collections=None if key.collections is None else list(key.collections),
                    allowed_origins=list(key.allowed_origins) or None,
                    rate_per_minute=key.rate_per_minute,
                    created_at=now(),
                )
            )
            pk = result.inserted_primary_key
            assert pk is not None
            row = conn.execute(select(api_keys).where(api_keys.c.id == int(pk[0]))).one()
        return api_key_from(row._mapping)

    def list_keys(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        with self.connect() as conn:
            rows = conn.execute(select(api_keys).order_by(api_keys.c.id)).all()
        return [api_key_from(r._mapping) for r in rows]

    def revoke_keys(self, key_ids: Sequence[int]) -> None:
        with self.transaction() as conn:
            conn.execute(
                update(api_keys).where(api_keys.c.id.in_(list(key_ids))).values(revoked_at=now())
            )

    def has_active_keys(self) -> bool:
        return self.reads.get("has_active_keys", self._read_has_active_keys)

    def _read_has_active_keys(self) -> bool:
        with self.connect() as conn:
            row = conn.execute(
                select(api_keys.c.id).where(api_keys.c.revoked_at.is_(None)).limit(1)
            ).first()
        return row is not None

    def ever_had_keys(self) -> bool:
        """Whether any key was ever created (revoked ones count)."""
        return self.reads.get("ever_had_keys", self._read_ever_had_keys)

    def _read_ever_had_keys(self) -> bool:
        with self.connect() as conn:
            return conn.execute(select(api_keys.c.id).limit(1)).first() is not None

    def find_key(self, key_sha256: str) -> ApiKey | None:
        """The active key with this secret's sha256, if any."""
        return self.reads.get(("key", key_sha256), lambda: self._read_key(key_sha256))

    def _read_key(self, key_sha256: str) -> ApiKey | None:
        with self.connect() as conn:
            row = conn.execute(
                select(api_keys).where(
                    api_keys.c.key_sha256 == key_sha256, api_keys.c.revoked_at.is_(None)
                )
            ).first()
        return None if row is None else api_key_from(row._mapping)

    def tokens_spent(self, key_id: int, day: date) -> int:
        """Model tokens the key spent on `day` (UTC)."""
        with self.connect() as conn:
            found = conn.execute(
                select(key_token_spend.c.tokens).where(
                    key_token_spend.c.key_id == key_id,
                    key_token_spend.c.day == day.isoformat(),
                )
            ).scalar()
        return int(found or 0)

    def add_tokens_spent(self, key_id: int, day: date, tokens: int) -> None:
        """Add to the key's count for `day`, atomically: replicas charging at once all count."""
        if tokens <= 0:
            return
        with self.transaction() as conn:
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            row = {"key_id": key_id, "day": day.isoformat(), "tokens": tokens}
            upsert = dialect.insert(key_token_spend).values(row)
            conn.execute(
                upsert.on_conflict_do_update(
                    index_elements=[key_token_spend.c.key_id, key_token_spend.c.day],
                    set_={"tokens": key_token_spend.c.tokens + upsert.excluded.tokens},
                )
            )
