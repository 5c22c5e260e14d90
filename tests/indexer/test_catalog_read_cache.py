"""The catalog's hot reads are kept until any connection, in any process, commits."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from indexer.catalog import Catalog, CollectionSpec
from indexer.catalog.change_signals import NoSignal, change_signal
from indexer.catalog.read_cache import CatalogReadCache
from indexer.errors import Unauthorized
from indexer.settings import Settings
from service.http.auth import create_key, hash_key, principal_for, revoke_key


@pytest.fixture
def catalog(settings: Settings) -> Iterator[Catalog]:
    settings.data_dir.mkdir(parents=True)
    opened = Catalog(settings.resolved_catalog_url)
    opened.create_collection(CollectionSpec("docs", "hashing", "hashing-4", 4, 64, 0))
    yield opened
    opened.close()


def database_file(catalog: Catalog) -> Path:
    return Path(str(catalog.engine.url.database))


class Loads:
    """A loader that counts its calls and returns the count."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> int:
        self.calls += 1
        return self.calls


def test_read_cache_keeps_a_value_until_another_connection_commits(catalog: Catalog) -> None:
    load = Loads()
    assert [catalog.reads.get("k", load) for _ in range(3)] == [1, 1, 1]

    with sqlite3.connect(database_file(catalog)) as other:  # another process's commit
        other.execute("UPDATE collections SET revision = revision + 1")

    assert catalog.reads.get("k", load) == 2
    assert catalog.reads.get("k", load) == 2


def test_read_cache_sees_this_process_commits_too(catalog: Catalog) -> None:
    load = Loads()
    catalog.reads.get("k", load)
    catalog.create_collection(CollectionSpec("more", "hashing", "hashing-4", 4, 64, 0))
    assert catalog.reads.get("k", load) == 2


def test_collection_lookup_shows_another_writers_revision_at_once(
    catalog: Catalog, settings: Settings
) -> None:
    before = catalog.get_collection("docs").revision
    writer = Catalog(settings.resolved_catalog_url)
    try:
        with sqlite3.connect(database_file(writer)) as conn:
            conn.execute("UPDATE collections SET revision = revision + 5 WHERE name = 'docs'")
        assert catalog.get_collection("docs").revision == before + 5
        writer.drop_collection("docs")
        assert catalog.find_collection("docs") is None
    finally:
        writer.close()


def test_a_key_revoked_elsewhere_stops_working_on_the_next_request(
    catalog: Catalog, settings: Settings
) -> None:
    secret, _ = create_key(catalog, "ops", ["read"])
    header = f"Bearer {secret}"
    assert principal_for(catalog, header, None).name == "ops"
    assert catalog.has_active_keys()

    other = Catalog(settings.resolved_catalog_url)  # e.g. `ragsearch keys revoke` elsewhere
    try:
        revoke_key(other, "ops")
    finally:
        other.close()

    assert catalog.find_key(hash_key(secret)) is None
    with pytest.raises(Unauthorized):
        principal_for(catalog, header, None)
    assert not catalog.has_active_keys()
    assert catalog.ever_had_keys()


def test_read_cache_is_off_where_no_change_signal_exists() -> None:
    for url in ("sqlite://", "sqlite:///:memory:"):
        engine = create_engine(url)
        assert isinstance(change_signal(engine), NoSignal)
        engine.dispose()
    cache = CatalogReadCache(NoSignal())
    load = Loads()
    assert [cache.get("k", load) for _ in range(3)] == [1, 2, 3]
    cache.close()


def test_read_cache_is_bounded(catalog: Catalog) -> None:
    for i in range(5000):  # e.g. a caller guessing keys
        catalog.reads.get(("key", str(i)), lambda: None)
    assert len(catalog.reads._values) <= 1024
