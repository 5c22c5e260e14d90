"""HTTP fixtures: the real app over a data directory in `tmp_path`, with the hashing embedder.

`client` is a `TestClient` whose lifespan has run; `loaded` adds a `docs` collection created
and filled through the API (English and Chinese files). The clock that drives rate limits is
a `FakeClock` the test moves by hand, and writes never wait for the writer lock.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from indexer.index import Index
from indexer.providers.base import ChatDelta, ChatMessage, ChatOptions, ChatResult
from indexer.records import Usage
from indexer.settings import Settings
from service.http.app import create_app
from service.http.auth import create_key
from service.query.engine import Engine
from tests.conftest import INGEST_DATA

UPLOADS = ("guide.md", "notes.txt", "chinese.md")


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class ScriptedChat:
    """A ChatModel that streams a fixed answer (with usage), or fails after its first piece."""

    def __init__(self, pieces: Sequence[str], *, fail_with: Exception | None = None) -> None:
        self.pieces = list(pieces)
        self.fail_with = fail_with

    async def complete(self, messages: Sequence[ChatMessage], options: ChatOptions) -> ChatResult:
        usage = Usage(options.model, prompt_tokens=100, completion_tokens=10)
        return ChatResult("".join(self.pieces), options.model, "stop", usage)

    async def stream(
        self, messages: Sequence[ChatMessage], options: ChatOptions
    ) -> AsyncIterator[ChatDelta]:
        for i, piece in enumerate(self.pieces):
            if i == 1 and self.fail_with is not None:
                raise self.fail_with
            yield ChatDelta(content=piece)
        usage = Usage(options.model, prompt_tokens=100, completion_tokens=10)
        yield ChatDelta(finish_reason="stop", usage=usage)

    async def aclose(self) -> None:
        return None


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_app(settings: Settings, clock: FakeClock, engine: Engine | None = None) -> FastAPI:
    return create_app(settings, engine=engine, clock=clock, writer_lock_timeout=0)


@pytest.fixture
def app(settings: Settings, clock: FakeClock) -> FastAPI:
    return make_app(settings, clock)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as opened:
        yield opened


def upload(client: TestClient, collection: str, *names: str, **kwargs: Any) -> Any:
    """POST files from tests/data/ingest as multipart `files`."""
    files = [("files", (name, (INGEST_DATA / name).read_bytes())) for name in names]
    return client.post(f"/v1/collections/{collection}/documents", files=files, **kwargs)


def fill(client: TestClient, name: str = "docs", files: Sequence[str] = UPLOADS) -> None:
    created = client.post("/v1/collections", json={"name": name, "embedder": "hashing"})
    assert created.status_code == 201, created.text
    uploaded = upload(client, name, *files)
    assert uploaded.status_code == 201, uploaded.text


@pytest.fixture(scope="session")
def filled_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory filled once through the API: collection `docs` with `UPLOADS`."""
    data_dir = tmp_path_factory.mktemp("template") / "data"
    with TestClient(create_app(Settings(data_dir=data_dir))) as client:
        fill(client)
    return data_dir


@pytest.fixture
def seeded(settings: Settings, filled_template: Path) -> Settings:
    """`settings` whose data directory starts as a copy of the filled template."""
    shutil.copytree(filled_template, settings.data_dir)
    return settings


@pytest.fixture
def loaded(seeded: Settings, app: FastAPI) -> Iterator[TestClient]:
    """A client whose collection `docs` holds guide.md, notes.txt and chinese.md."""
    with TestClient(app) as opened:
        yield opened


@pytest.fixture
def chat_client(seeded: Settings, clock: FakeClock) -> Iterator[TestClient]:
    """A loaded app whose engine answers with `ScriptedChat` (a cited one-sentence answer)."""
    chat = ScriptedChat(["Stop writers before copying ", "the data directory [1]."])
    with engine_client(seeded, clock, chat) as opened:
        yield opened


@contextmanager
def engine_client(settings: Settings, clock: FakeClock, chat: Any) -> Iterator[TestClient]:
    """An app over an engine the test built (with `chat`), closed afterwards."""
    engine = Engine(settings, chat=chat)
    try:
        with TestClient(make_app(settings, clock, engine)) as opened:
            yield opened
    finally:
        asyncio.run(engine.aclose())


def parse_sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    """`event:`/`data:` blocks of a Server-Sent Events body, in order."""
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    """The response is the one error body with this status and code; returns its message."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"error", "request_id"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    assert body["request_id"] == response.headers["x-request-id"]
    assert body["error"]["message"]
    return dict(body["error"])


def new_key(settings: Settings, name: str, scopes: Sequence[str], **options: Any) -> str:
    """Create an API key straight in the catalog; returns its secret."""
    index = Index(settings)
    try:
        secret, _ = create_key(index.catalog, name, scopes, **options)
    finally:
        index.close()
    return secret


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}
