"""Pytest fixtures for the fake Zhipu server. Import them into `tests/conftest.py`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from indexer.settings import Settings
from tests.fakes.zhipu_server import FakeZhipu


@pytest.fixture(scope="session")
def fake_zhipu_server() -> Iterator[FakeZhipu]:
    """One fake Zhipu server for the whole session (starting uvicorn costs ~0.1 s)."""
    with FakeZhipu() as fake:
        yield fake


@pytest.fixture
def fake_zhipu(fake_zhipu_server: FakeZhipu) -> FakeZhipu:
    """The session's fake, with its record and fault switches cleared for this test."""
    fake_zhipu_server.reset()
    return fake_zhipu_server


@pytest.fixture
def zhipu_settings(fake_zhipu: FakeZhipu, tmp_path: Path) -> Settings:
    """Settings pointing Zhipu at the fake, with tiny backoff and short timeouts."""
    return Settings(
        data_dir=tmp_path,
        zhipu_api_key=SecretStr(fake_zhipu.api_key),
        zhipu_base_url=fake_zhipu.base_url,
        zhipu_backoff_seconds=0.001,
        zhipu_timeout_seconds=2.0,
        zhipu_connect_timeout_seconds=2.0,
        zhipu_max_retries=3,
        zhipu_max_concurrency=4,
    )


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio only: the Zhipu client uses asyncio primitives."""
    return "asyncio"


class RecordedSleep:
    """An injectable `sleep` that records the waits asked for and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def recorded_sleep() -> RecordedSleep:
    """Pass as `sleep=` to a Zhipu client so retries do not wait and waits can be checked."""
    return RecordedSleep()
