"""MCP: the official `mcp` client against `/mcp` on a real uvicorn server, and over stdio."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from indexer.index import Index
from indexer.settings import Settings
from service.http.app import create_app
from service.http.auth import create_key
from service.http.tools import tool_definitions
from tests.fakes.live_server import LiveServer
from tests.service.chatbots import build_corpus, source_names

QUESTION = "How often are logs rotated?"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = Settings(data_dir=tmp_path_factory.mktemp("mcp") / "data")
    build_corpus(settings)
    return settings


@pytest.fixture(scope="module")
def server(corpus: Settings) -> Iterator[LiveServer]:
    with LiveServer(create_app(corpus)) as live:
        yield live


async def _session_call(url: str, key: str | None, calls: list[tuple[str, dict[str, Any]]]) -> Any:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=10) as http,
        streamable_http_client(f"{url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        tools = await session.list_tools()
        results = [await session.call_tool(name, args) for name, args in calls]
        return tools, results


def _call(
    server: LiveServer, calls: list[tuple[str, dict[str, Any]]], key: str | None = None
) -> Any:
    return asyncio.run(_session_call(server.url, key, calls))


def _payload(result: Any) -> dict[str, Any]:
    assert not result.is_error, result.content
    if result.structured_content is not None:
        return dict(result.structured_content)
    return dict(json.loads(result.content[0].text))


def test_mcp_lists_the_three_tools_with_their_arguments(server: LiveServer) -> None:
    tools, _ = _call(server, [])
    by_name = {t.name: t for t in tools.tools}
    assert set(by_name) == {"search", "answer", "list_collections"}
    for name in ("search", "answer"):
        schema = by_name[name].input_schema
        assert set(schema["required"]) == {"query", "collection"}
        assert {"top_k", "filter"} <= set(schema["properties"])
        for parameter, spec in schema["properties"].items():
            assert spec.get("description"), f"{name}.{parameter} has no description"


def test_mcp_search_returns_ranked_passages_with_sources(server: LiveServer) -> None:
    _, (result,) = _call(
        server, [("search", {"query": QUESTION, "collection": "docs", "top_k": 3})]
    )
    hits = _payload(result)["results"]
    assert 1 <= len(hits) <= 3
    assert Path(hits[0]["source"]).name == "logs.md"
    assert "rotated" in hits[0]["text"]


def test_mcp_list_collections_shows_every_collection(server: LiveServer) -> None:
    _, (result,) = _call(server, [("list_collections", {})])
    names = {c["name"]: c["documents"] for c in _payload(result)["collections"]}
    assert names == {"docs": 5, "other": 1}


def test_mcp_tool_errors_are_tool_results_not_crashes(server: LiveServer) -> None:
    _, results = _call(
        server,
        [
            ("search", {"query": "   ", "collection": "docs"}),
            ("answer", {"query": "x", "collection": "nope"}),
        ],
    )
    assert all(r.is_error for r in results)
    assert "invalid_input" in results[0].content[0].text
    assert "not_found" in results[1].content[0].text


def test_same_question_same_answer_over_answer_chat_and_mcp(server: LiveServer) -> None:
    """The embedded extractive answerer is deterministic: three surfaces, one answer."""
    with httpx.Client(base_url=server.url, timeout=10) as http:
        plain = http.post("/v1/answer", json={"query": QUESTION, "collection": "docs"}).json()
        chat = http.post(
            "/v1/chat/completions",
            json={"model": "ragsearch:docs", "messages": [{"role": "user", "content": QUESTION}]},
        ).json()
    _, (result,) = _call(server, [("answer", {"query": QUESTION, "collection": "docs"})])
    mcp = _payload(result)
    assert plain["answer"] == chat["choices"][0]["message"]["content"] == mcp["answer"]
    assert plain["citations"] == chat["citations"] == mcp["citations"]
    assert source_names(mcp["citations"])[0] == "logs.md"


def test_mcp_needs_a_read_key_once_keys_exist(corpus: Settings, tmp_path: Path) -> None:
    settings = corpus.model_copy(update={"data_dir": tmp_path / "data"})
    build_corpus(settings)
    index = Index(settings, writer=True)
    try:
        reader, _ = create_key(index.catalog, "reader", ["read"], collections=["docs"])
    finally:
        index.close()
    with LiveServer(create_app(settings)) as live:
        refused = httpx.post(
            f"{live.url}/mcp",
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"Accept": "application/json, text/event-stream"},
        )
        assert refused.status_code == 401
        assert refused.json()["error"]["message"].startswith("an API key is required")
        _, results = _call(
            live,
            [
                ("search", {"query": QUESTION, "collection": "docs"}),
                ("search", {"query": QUESTION, "collection": "other"}),
            ],
            key=reader,
        )
    assert _payload(results[0])["results"]
    assert results[1].is_error and "forbidden" in results[1].content[0].text


def test_v1_tools_matches_the_mcp_tools(server: LiveServer) -> None:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        body = http.get("/v1/tools").json()
    assert body["tools"] == tool_definitions()
    assert body["endpoints"]["search"] == {"method": "POST", "path": "/v1/search"}
    tools, _ = _call(server, [])
    mcp = {t.name: set(t.input_schema["properties"]) for t in tools.tools}
    for tool in body["tools"]:
        function = tool["function"]
        assert tool["type"] == "function"
        assert set(function["parameters"]["required"]) == {"query", "collection"}
        for parameter, spec in function["parameters"]["properties"].items():
            assert spec.get("description"), f"{function['name']}.{parameter} has no description"
        assert {"query", "collection", "top_k", "filter"} <= mcp[function["name"]]


def test_function_call_arguments_post_straight_to_search(server: LiveServer) -> None:
    """A chatbot that calls the `search` function POSTs its arguments to /v1/search."""
    with httpx.Client(base_url=server.url, timeout=10) as http:
        arguments = {"query": QUESTION, "collection": "docs", "top_k": 2}
        found = http.post("/v1/search", json=arguments)
    assert found.status_code == 200, found.text
    assert Path(found.json()["results"][0]["source"]).name == "logs.md"


def test_ragsearch_mcp_serves_the_tools_over_stdio(corpus: Settings) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "service.cli", "--data-dir", str(corpus.data_dir), "mcp"],
        env={"PATH": "/usr/bin:/bin", "PYTHONWARNINGS": "ignore"},
    )

    async def run() -> Any:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            return await session.call_tool("search", {"query": QUESTION, "collection": "docs"})

    result = asyncio.run(run())
    assert Path(_payload(result)["results"][0]["source"]).name == "logs.md"
