"""The data directory and the catalog are private to their owner, whatever the umask."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Cli


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    previous = os.umask(0o022)  # the common default that made files world-readable
    try:
        yield
    finally:
        os.umask(previous)


def test_ingest_creates_a_private_data_directory(
    cli: Cli, docs: Path, permissive_umask: None
) -> None:
    cli.create_collection()
    result = cli("ingest", docs, "-c", "docs")
    assert result.exit_code == 0, result.stderr

    data = cli.data_dir
    assert mode(data) == 0o700
    assert mode(data / "catalog.sqlite3") == 0o600
    assert mode(data / "vectors") == 0o700
    wal = data / "catalog.sqlite3-wal"
    if wal.exists():
        assert mode(wal) & 0o077 == 0


def test_an_existing_directory_keeps_its_mode(cli: Cli, permissive_umask: None) -> None:
    cli.data_dir.mkdir(mode=0o750)
    os.chmod(cli.data_dir, 0o750)
    cli.create_collection()
    assert mode(cli.data_dir) == 0o750
    assert mode(cli.data_dir / "catalog.sqlite3") == 0o600
