"""The catalog read cache on PostgreSQL: kept while no NOTIFY says the collections or keys
changed, off whenever the listener is not connected."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from indexer.catalog import Catalog
from indexer.catalog.change_signals import LISTENER_NAME, NoSignal, pg_triggers_installed
from indexer.settings import Settings
from service.http.auth import create_key, hash_key, revoke_key
from tests.indexer import test_catalog
from tests.indexer.test_catalog_read_cache import Loads


@pytest.fixture
def settings(tmp_path: Path, postgres_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", catalog_url=postgres_url)


catalog = test_catalog.catalog  # the catalog specification's fixture, on this module's settings


def eventually(check: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return False


def listening(catalog: Catalog) -> bool:
    return catalog.reads.signal.version() is not None


def outside_write(url: str, statement: str) -> None:
    """A commit by another replica (no catalog of this process knows of it)."""
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text(statement))
    engine.dispose()


def test_pg_reads_are_kept_until_another_replica_commits(
    catalog: Catalog, postgres_url: str
) -> None:
    assert eventually(lambda: listening(catalog))
    load = Loads()
    assert [catalog.reads.get("k", load) for _ in range(3)] == [1, 1, 1]

    outside_write(
        postgres_url,
        "INSERT INTO api_keys (name, prefix, key_sha256, scopes, "
        "allowed_origins, created_at) VALUES ('x', 'rsk_x', 'ab', '[]', '[]', 'now')",
    )

    assert eventually(lambda: catalog.reads.get("k", load) == 2)


def test_pg_a_key_revoked_by_another_replica_stops_working(
    catalog: Catalog, postgres_url: str
) -> None:
    secret, _ = create_key(catalog, "ops", ["read"])
    assert eventually(lambda: listening(catalog))
    assert catalog.find_key(hash_key(secret)) is not None  # now cached

    outside_write(postgres_url, "UPDATE api_keys SET revoked_at = 'now'")

    assert eventually(lambda: catalog.find_key(hash_key(secret)) is None, seconds=5)


def test_pg_this_process_commits_show_at_once(catalog: Catalog) -> None:
    assert eventually(lambda: listening(catalog))
    assert not catalog.has_active_keys()
    secret, _ = create_key(catalog, "ops", ["read"])
    assert catalog.has_active_keys()  # no wait for the notification
    assert catalog.find_key(hash_key(secret)) is not None
    revoke_key(catalog, "ops")
    assert catalog.find_key(hash_key(secret)) is None


def test_pg_cache_is_off_while_the_listener_is_down_and_back_after(
    catalog: Catalog, postgres_url: str
) -> None:
    secret, _ = create_key(catalog, "ops", ["read"])
    assert eventually(lambda: listening(catalog))
    before = catalog.reads.signal.version()
    assert catalog.find_key(hash_key(secret)) is not None

    outside_write(
        postgres_url,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        f"WHERE application_name = '{LISTENER_NAME}' AND datname = current_database()",
    )
    # It reconnects, and a reconnection forgets everything (changes may have been missed).
    assert eventually(lambda: catalog.reads.signal.version() not in (None, before))
    outside_write(postgres_url, "UPDATE api_keys SET revoked_at = 'now'")
    assert eventually(lambda: catalog.find_key(hash_key(secret)) is None, seconds=5)


def test_pg_triggers_are_restored_when_a_catalog_opens(
    catalog: Catalog, settings: Settings, postgres_url: str
) -> None:
    outside_write(postgres_url, "DROP TRIGGER ragsearch_api_keys_changed ON api_keys")
    with catalog.engine.connect() as conn:
        assert not pg_triggers_installed(conn)

    reopened = Catalog(settings.resolved_catalog_url)
    try:
        with reopened.engine.connect() as conn:
            assert pg_triggers_installed(conn)
    finally:
        reopened.close()


def test_pg_a_role_that_may_not_create_triggers_opens_without_the_cache(
    catalog: Catalog, settings: Settings, postgres_url: str
) -> None:
    role = f"rs_limited_{secrets.token_hex(4)}"
    outside_write(postgres_url, "DROP TRIGGER ragsearch_api_keys_changed ON api_keys")
    outside_write(
        postgres_url,
        f"CREATE ROLE {role} LOGIN; "
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}; "
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}",
    )
    limited_url = make_url(postgres_url).set(username=role, password=None)
    limited_url = limited_url.render_as_string(hide_password=False)
    try:
        limited = Catalog(limited_url)  # it may not create the trigger back
        try:
            assert isinstance(limited.reads.signal, NoSignal)
            secret, _ = create_key(limited, "ops", ["read"])
            assert limited.find_key(hash_key(secret)) is not None
            outside_write(postgres_url, "UPDATE api_keys SET revoked_at = 'now'")
            assert limited.find_key(hash_key(secret)) is None  # read from the database
        finally:
            limited.close()
    finally:
        outside_write(postgres_url, f"DROP OWNED BY {role}; DROP ROLE {role}")
