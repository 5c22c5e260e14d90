"""Every error class renders the same way on every surface: its status, code, message and
Retry-After over HTTP JSON, the answer's SSE stream, OpenAI chat (JSON and stream), MCP and the CLI.
A model provider's failure is shown to callers as one 503 without its detail (`shown`); the
CLI, run by the operator, prints the detail.

The errors come from a real failure: the chat model raises them mid-answer.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient
from mcp import Client

from indexer.cli_context import reports_errors
from indexer.errors import ALL_ERRORS, ProviderError, ProviderRejected, RagsearchError
from indexer.settings import Settings
from service.http.auth import open_principal
from service.http.errors import PROVIDER_MESSAGE
from service.http.mcp_server import Caller, build_server
from service.query.engine import Engine
from tests.service.conftest import FakeClock, ScriptedChat, make_app, parse_sse

QUESTION = {"query": "copying the data directory", "collection": "docs"}
MESSAGE = "the error's own message"
RETRY_AFTER = 3.0  # whole seconds, rounded up: stays 3 (`round(x + 0.5)` once made it 4)


@pytest.fixture(scope="module")
def chat() -> ScriptedChat:
    return ScriptedChat(["Stop writers ", "before copying [1]."])


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, chat: ScriptedChat) -> Iterator[Engine]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("errors") / "data")
    opened = Engine(settings, chat=chat)
    yield opened
    asyncio.run(opened.aclose())


@pytest.fixture(scope="module")
def client(engine: Engine) -> Iterator[TestClient]:
    with TestClient(make_app(engine.settings, FakeClock(), engine)) as opened:
        opened.post("/v1/collections", json={"name": "docs", "embedder": "hashing"})
        opened.post(
            "/v1/collections/docs/documents",
            json={"source": "a.md", "text": "Stop writers before copying the data directory."},
        )
        yield opened


def shown(error: RagsearchError) -> tuple[int, str, str]:
    """(status, code, message) a caller sees for `error`."""
    if isinstance(error, ProviderError) and not isinstance(error, ProviderRejected):
        return 503, "provider_unavailable", PROVIDER_MESSAGE
    return error.status, error.code, MESSAGE


@pytest.fixture(params=ALL_ERRORS, ids=lambda cls: cls.__name__)
def error(request: pytest.FixtureRequest, chat: ScriptedChat) -> Iterator[RagsearchError]:
    raised = request.param(MESSAGE, retry_after=RETRY_AFTER)
    chat.fail_with = raised
    yield raised
    chat.fail_with = None


def test_error_classes_are_all_listed() -> None:
    def subclasses(cls: type[RagsearchError]) -> set[type[RagsearchError]]:
        return {cls}.union(*(subclasses(sub) for sub in cls.__subclasses__()))

    assert subclasses(RagsearchError) == set(ALL_ERRORS)


def test_error_renders_over_http_json(client: TestClient, error: RagsearchError) -> None:
    response = client.post("/v1/answer", json=QUESTION)
    status, code, message = shown(error)

    assert response.status_code == status
    assert response.json()["error"] == {"code": code, "message": message}
    assert response.headers["retry-after"] == "3"


def test_error_renders_in_the_answer_stream(client: TestClient, error: RagsearchError) -> None:
    response = client.post("/v1/answer", json={**QUESTION, "stream": True})

    name, data = parse_sse(response.text)[-1]
    _, code, message = shown(error)
    assert response.status_code == 200
    assert (name, data["error"]) == ("error", {"code": code, "message": message})


def test_error_renders_over_openai_chat(client: TestClient, error: RagsearchError) -> None:
    body = {"model": "ragsearch:docs", "messages": [{"role": "user", "content": QUESTION["query"]}]}

    plain = client.post("/v1/chat/completions", json=body)
    streamed = client.post("/v1/chat/completions", json={**body, "stream": True})

    status, code, message = shown(error)
    assert plain.status_code == status
    assert plain.headers["retry-after"] == "3"
    assert (plain.json()["error"]["code"], plain.json()["error"]["message"]) == (code, message)
    last = json.loads(streamed.text.strip().split("\n\n")[-1].removeprefix("data: "))
    assert (last["error"]["code"], last["error"]["message"]) == (code, message)


def test_error_renders_over_mcp(client: TestClient, engine: Engine, error: RagsearchError) -> None:
    server = build_server(lambda _ctx: Caller(engine, open_principal()))

    async def call() -> str:
        async with Client(server) as mcp:
            result = await mcp.call_tool("answer", QUESTION)
        assert result.is_error
        return str(result.content[0].text)  # type: ignore[union-attr]

    _, code, message = shown(error)
    assert asyncio.run(call()).endswith(f": {code}: {message}")


def test_error_renders_on_the_cli(error: RagsearchError) -> None:
    @click.command()
    @reports_errors
    def failing() -> None:
        raise error

    result = CliRunner().invoke(failing)

    assert (result.exit_code, result.stderr) == (error.exit_code, f"error: {MESSAGE}\n")


def test_unexpected_error_in_the_openai_stream_is_generic(
    client: TestClient, chat: ScriptedChat, caplog: pytest.LogCaptureFixture
) -> None:
    chat.fail_with = RuntimeError("secret internals")
    body = {"model": "ragsearch:docs", "messages": [{"role": "user", "content": QUESTION["query"]}]}
    try:
        streamed = client.post("/v1/chat/completions", json={**body, "stream": True})
    finally:
        chat.fail_with = None

    last = json.loads(streamed.text.strip().split("\n\n")[-1].removeprefix("data: "))
    assert last["error"]["code"] == "internal_error"
    assert "secret internals" not in streamed.text
    assert "secret internals" in caplog.text


def test_error_test_sees_a_real_answer_when_nothing_fails(
    client: TestClient, tmp_path: Path
) -> None:
    response = client.post("/v1/answer", json=QUESTION)

    assert response.status_code == 200
    assert response.json()["answer"] == "Stop writers before copying [1]."
