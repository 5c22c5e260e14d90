"""How a process learns that the catalog's collections or API keys changed, for the read
cache (`read_cache.py`): a number that moves when they may have, or None when unknown.

- SQLite: `PRAGMA data_version` moves on any other connection's commit, this process's or
  another's, and asking costs microseconds.
- PostgreSQL: triggers on `collections` and `api_keys` send a NOTIFY on commit; a listening
  connection per process counts them. A replica therefore sees another replica's change when
  the notification arrives (milliseconds), and its own commits at once (`changed`). While
  the listener is not connected the number is None: the cache is off, reads go to the
  database, and nothing stale can be served.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from typing import Protocol

from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import URL

log = logging.getLogger("ragsearch.catalog")

CHANNEL = "ragsearch_catalog"
LISTENER_NAME = "ragsearch-catalog-notify"  # its application_name in pg_stat_activity
_TABLES = ("collections", "api_keys")  # what the cache holds reads of
_FUNCTION = "ragsearch_catalog_changed_v1"
_RECONNECT_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0)
_POLL_SECONDS = 0.2  # how soon a stopped listener notices


class ChangeSignal(Protocol):
    def version(self) -> int | None: ...

    def changed(self) -> None:
        """This process committed a change: forget at once, not when a notice arrives."""
        ...

    def close(self) -> None: ...


class NoSignal:
    """No way to know: every read goes to the database."""

    def version(self) -> int | None:
        return None

    def changed(self) -> None:
        return None

    def close(self) -> None:
        return None


class SqliteDataVersion:
    def __init__(self, path: str) -> None:
        # Autocommit, and only ever PRAGMA data_version: it never holds a read snapshot.
        self._conn: sqlite3.Connection | None = sqlite3.connect(
            path, isolation_level=None, check_same_thread=False
        )
        self._lock = threading.Lock()

    def version(self) -> int | None:
        with self._lock:
            if self._conn is None:
                return None
            try:
                row = self._conn.execute("PRAGMA data_version").fetchone()
            except sqlite3.Error:
                return None  # the read itself will report what is wrong
            return int(row[0])

    def changed(self) -> None:
        return None  # this process's other connections' commits move data_version too

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def install_pg_triggers(conn: Connection) -> bool:
    """Create the NOTIFY triggers (idempotent; inside the caller's transaction, which holds
    the schema lock). False when this role may not create them: no cache then."""
    try:
        with conn.begin_nested():
            conn.execute(
                text(
                    f"CREATE OR REPLACE FUNCTION {_FUNCTION}() RETURNS trigger "
                    "LANGUAGE plpgsql AS $$ BEGIN "
                    f"PERFORM pg_notify('{CHANNEL}', TG_TABLE_NAME); RETURN NULL; END $$"
                )
            )
            for table in _TABLES:
                for event in ("INSERT OR UPDATE OR DELETE", "TRUNCATE"):
                    suffix = "truncated" if event == "TRUNCATE" else "changed"
                    conn.execute(
                        text(
                            f"CREATE OR REPLACE TRIGGER ragsearch_{table}_{suffix} "
                            f"AFTER {event} ON {table} "
                            f"FOR EACH STATEMENT EXECUTE FUNCTION {_FUNCTION}()"
                        )
                    )
    except Exception as exc:  # privileges, an old server: caching stays off, nothing breaks
        log.warning("catalog read cache off: cannot create its triggers (%s)", exc)
        return False
    return True


class PostgresNotifications:
    """Counts the catalog's NOTIFYs on one listening connection, in a daemon thread. One per
    database per process, shared by its catalogs (`postgres_signal`)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._lock = threading.Lock()
        self._count: int | None = None  # None: not listening
        self.users = 0  # open catalogs using it; guarded by _registry_lock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._listen, name="catalog-notify", daemon=True)
        self._thread.start()

    def version(self) -> int | None:
        with self._lock:
            return self._count

    def changed(self) -> None:
        with self._lock:
            if self._count is not None:
                self._count += 1

    def _set(self, listening: bool) -> None:
        with self._lock:
            # Connecting or reconnecting: anything may have changed meanwhile.
            self._count = ((self._count or 0) + 1) if listening else None

    def _listen(self) -> None:
        import psycopg

        failures = 0
        while not self._stop.is_set():
            try:
                with psycopg.connect(
                    self.dsn, autocommit=True, connect_timeout=10, application_name=LISTENER_NAME
                ) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self._set(listening=True)
                    failures = 0
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=_POLL_SECONDS):
                            self.changed()
            except Exception as exc:
                self._set(listening=False)
                if self._stop.is_set():
                    return
                wait = _RECONNECT_SECONDS[min(failures, len(_RECONNECT_SECONDS) - 1)]
                failures += 1
                log.warning("catalog notifications lost (%s); cache off, retry in %ss", exc, wait)
                self._stop.wait(wait)
        self._set(listening=False)

    def stop(self) -> None:
        """Without waiting: the thread sees the flag within _POLL_SECONDS and closes its
        connection (a CLI command on PostgreSQL must not wait for it to exit)."""
        self._stop.set()
        self._set(listening=False)


_registry_lock = threading.Lock()
_listeners: dict[str, PostgresNotifications] = {}


class _SharedListener:
    """A catalog's use of its database's listener; the last one closed stops it."""

    def __init__(self, listener: PostgresNotifications) -> None:
        self._listener: PostgresNotifications | None = listener

    def version(self) -> int | None:
        listener = self._listener
        return None if listener is None else listener.version()

    def changed(self) -> None:
        if self._listener is not None:
            self._listener.changed()

    def close(self) -> None:
        listener, self._listener = self._listener, None
        if listener is None:
            return
        with _registry_lock:
            listener.users -= 1
            last = listener.users == 0
            if last and _listeners.get(listener.dsn) is listener:
                del _listeners[listener.dsn]
        if last:
            listener.stop()


def postgres_signal(url: URL) -> ChangeSignal:
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    with _registry_lock:
        listener = _listeners.get(dsn)
        if listener is None:
            listener = _listeners[dsn] = PostgresNotifications(dsn)
        listener.users += 1
    return _SharedListener(listener)


def pg_triggers_installed(conn: Connection) -> bool:
    """Whether every NOTIFY trigger is in place and enabled (else the cache must stay off)."""
    names = [
        f"ragsearch_{table}_{suffix}" for table in _TABLES for suffix in ("changed", "truncated")
    ]
    found = conn.execute(
        text("SELECT count(*) FROM pg_trigger WHERE tgname = ANY(:names) AND tgenabled <> 'D'"),
        {"names": names},
    ).scalar_one()
    return int(found) == len(names)


def change_signal(engine: Engine) -> ChangeSignal:
    """The signal for this catalog database: SQLite's data version, PostgreSQL's
    notifications when their triggers are in place, else none."""
    url = engine.url
    dialect = url.get_backend_name()
    database = url.database
    if dialect == "sqlite":
        on_file = bool(database) and database != ":memory:"
        if on_file and not str(database).startswith("file:"):
            return SqliteDataVersion(str(database))
        return NoSignal()
    if dialect == "postgresql":
        with engine.connect() as conn:
            if pg_triggers_installed(conn):
                return postgres_signal(url)
    return NoSignal()
