"""Shared fixtures: settings in a temporary data directory, an index, fast collections, the CLI.

Everything is real: SQLite files and FAISS files under `tmp_path`, the CLI through click's
`CliRunner`. Collections use the deterministic `hashing` embedder unless a test says otherwise.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from indexer.collections import create_collection
from indexer.index import Index
from indexer.providers.factory import EmbedderCache, EmbedderSpec
from indexer.records import Collection
from indexer.settings import Settings

pytest_plugins = ["tests.fakes.fixtures"]  # the fake Zhipu server

DATA = Path(__file__).parent / "data"
INGEST_DATA = DATA / "ingest"


# Starlette's TestClient calls itself `testserver`: a public origin for every test, so keyless
# requests pass the open-mode Host check as requests to localhost do. Tests of that check set
# `public_origins` themselves (init arguments beat the environment).
TEST_PUBLIC_ORIGINS = '["http://testserver"]'
os.environ["RAGSEARCH_PUBLIC_ORIGINS"] = TEST_PUBLIC_ORIGINS  # session fixtures too


@pytest.fixture(scope="session")
def model_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One ONNX model cache for the whole session: MiniLM is written to ONNX once."""
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, model_cache_dir: Path) -> None:
    """No `RAGSEARCH_*` variable or Zhipu key from the developer's shell reaches a test.

    The ONNX model cache points at the session's, so no test writes to the user's cache.
    """
    for name in list(os.environ):
        if name.startswith("RAGSEARCH_") or name == "ZHIPUAI_API_KEY":
            monkeypatch.delenv(name)
    monkeypatch.setenv("RAGSEARCH_MODEL_CACHE_DIR", str(model_cache_dir))
    monkeypatch.setenv("RAGSEARCH_PUBLIC_ORIGINS", TEST_PUBLIC_ORIGINS)


POSTGRES_ADMIN_URL = os.environ.get(
    "TEST_POSTGRES_ADMIN_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """URL of a throwaway PostgreSQL database for this test session, dropped at the end.

    The server is `TEST_POSTGRES_ADMIN_URL` (default: postgres@127.0.0.1:5432, trust auth).
    Skips, saying why, only when no server answers.
    """
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"ragsearch_test_{secrets.token_hex(6)}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {name}"))
    except OperationalError as exc:
        admin.dispose()
        pytest.skip(f"no PostgreSQL server at {POSTGRES_ADMIN_URL}: {exc.orig}")
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        admin.dispose()


@pytest.fixture
def postgres_url(postgres_database: str) -> str:
    """The session's PostgreSQL database, emptied for this test (ids keep growing)."""
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(postgres_database)
    with engine.begin() as conn:
        tables = inspect(conn).get_table_names()
        if tables:
            conn.execute(text(f"TRUNCATE {', '.join(tables)} CASCADE"))
    engine.dispose()
    return postgres_database


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with a fresh data directory under `tmp_path`."""
    return Settings(data_dir=tmp_path / "data")


@pytest.fixture
def index(settings: Settings) -> Iterator[Index]:
    """The data directory's index, opened for writing (the test is the only writer)."""
    opened = Index(settings, writer=True)
    yield opened
    opened.close()


MakeCollection = Callable[..., Collection]


@pytest.fixture
def make_collection(index: Index, settings: Settings) -> MakeCollection:
    """`make_collection(name="docs", dimensions=256, chunk_tokens=None)`: a hashing collection."""

    def make(
        name: str = "docs", dimensions: int = 256, chunk_tokens: int | None = None
    ) -> Collection:
        spec = EmbedderSpec("hashing", "hashing", dimensions)
        return create_collection(
            index, EmbedderCache(settings), name, spec, chunk_tokens=chunk_tokens
        )

    return make


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    """A folder with three small English files (.md, .txt, .md) copied from tests/data/ingest."""
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in ("guide.md", "notes.txt", "release.md"):
        shutil.copy(INGEST_DATA / name, folder / name)
    return folder


class Cli:
    """Runs `ragsearch` in-process with `--data-dir` set; stdout and stderr kept apart."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.runner = CliRunner()

    def __call__(
        self, *args: str | Path, env: dict[str, str] | None = None, input: str | None = None
    ) -> Result:
        from service.cli import build_cli

        argv = ["--data-dir", str(self.data_dir), *map(str, args)]
        return self.runner.invoke(build_cli(), argv, env=env, input=input, catch_exceptions=False)

    def json(self, *args: str | Path, code: int = 0) -> Any:
        """Run a `--json` command, check its exit code and parse its whole stdout."""
        result = self(*args, "--json")
        assert result.exit_code == code, result.stderr
        return json.loads(result.stdout)

    def create_collection(self, name: str = "docs", *options: str) -> None:
        """`collections create NAME --embedder hashing [options]`."""
        result = self("collections", "create", name, "--embedder", "hashing", *options)
        assert result.exit_code == 0, result.stderr


@pytest.fixture
def cli(settings: Settings) -> Cli:
    """The CLI bound to the `settings` data directory."""
    return Cli(settings.data_dir)
