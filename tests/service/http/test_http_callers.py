"""Hostile callers: revoked keys, cross-site requests and DNS rebinding in open mode."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from indexer.index import Index
from indexer.settings import Settings
from service.http.app import create_app
from service.http.auth import revoke_key
from service.query.engine import Engine
from tests.service.conftest import (
    FakeClock,
    ScriptedChat,
    assert_error,
    bearer,
    make_app,
    new_key,
    upload,
)

SEARCH = {"query": "data directory", "collection": "docs"}
EVIL = "https://evil.example"
SITE = "https://site.example"
ROOT = Path(__file__).resolve().parents[3]


def revoke_all(settings: Settings, *names: str) -> None:
    index = Index(settings)
    try:
        for name in names:
            revoke_key(index.catalog, name)
    finally:
        index.close()


def test_revoking_every_key_keeps_the_service_closed(
    loaded: TestClient, settings: Settings
) -> None:
    new_key(settings, "ops", ["admin"])
    reader = bearer(new_key(settings, "reader", ["read"], collections=["docs"]))
    revoke_all(settings, "ops", "reader")

    with_revoked = loaded.post("/v1/search", json=SEARCH, headers=reader)
    without = loaded.get("/v1/collections")

    assert_error(with_revoked, 401, "unauthorized")
    assert "stays closed" in assert_error(without, 401, "unauthorized")["message"]
    assert_error(loaded.get("/metrics", headers=reader), 401, "unauthorized")
    assert_error(
        loaded.post("/v1/collections", json={"name": "x", "embedder": "hashing"}, headers=reader),
        401,
        "unauthorized",
    )


def test_open_after_keys_reopens_only_when_set(seeded: Settings, clock: FakeClock) -> None:
    new_key(seeded, "ops", ["admin"])
    revoke_all(seeded, "ops")
    reopened = seeded.model_copy(update={"open_after_keys": True})
    with TestClient(make_app(reopened, clock)) as client:
        assert client.post("/v1/search", json=SEARCH).status_code == 200


@pytest.fixture
def local_only(seeded: Settings, clock: FakeClock) -> Iterator[TestClient]:
    """An open service (no keys) with no public origins, called as http://localhost."""
    settings = seeded.model_copy(update={"public_origins": []})
    with TestClient(make_app(settings, clock), base_url="http://localhost:8000") as client:
        yield client


def test_open_mode_refuses_a_foreign_host(local_only: TestClient) -> None:
    rebound = local_only.post("/v1/search", json=SEARCH, headers={"Host": "evil.example"})
    assert "Host 'evil.example'" in assert_error(rebound, 403, "forbidden")["message"]
    assert local_only.post("/v1/search", json=SEARCH).status_code == 200
    ip = local_only.post("/v1/search", json=SEARCH, headers={"Host": "127.0.0.1:8000"})
    assert ip.status_code == 200


def test_open_mode_refuses_a_cross_site_upload(local_only: TestClient) -> None:
    planted = upload(local_only, "docs", "release.md", headers={"Origin": EVIL})
    assert "cross-site" in assert_error(planted, 403, "forbidden")["message"]
    sources = [
        d["source"] for d in local_only.get("/v1/collections/docs/documents").json()["documents"]
    ]
    assert "release.md" not in sources
    local_page = upload(
        local_only, "docs", "release.md", headers={"Origin": "http://localhost:5173"}
    )
    assert local_page.status_code == 201, local_page.text


def test_public_origins_are_accepted_in_open_mode(seeded: Settings, clock: FakeClock) -> None:
    settings = seeded.model_copy(update={"public_origins": ["https://search.example"]})
    with TestClient(make_app(settings, clock), base_url="https://search.example") as client:
        ok = client.post("/v1/search", json=SEARCH, headers={"Origin": "https://search.example"})
        evil = client.post("/v1/search", json=SEARCH, headers={"Origin": EVIL})
    assert ok.status_code == 200, ok.text
    assert_error(evil, 403, "forbidden")


def test_mcp_refuses_a_rebound_host_even_with_a_key(
    local_only: TestClient, seeded: Settings
) -> None:
    key = bearer(new_key(seeded, "ops", ["admin"]))
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {**key, "Accept": "application/json, text/event-stream"}
    rebound = local_only.post("/mcp", json=call, headers={**headers, "Host": "evil.example"})
    local = local_only.post("/mcp", json=call, headers=headers)
    assert rebound.status_code == 421
    assert local.status_code == 200, local.text


def test_the_container_never_starts_an_open_server() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    command = next(line for line in dockerfile.splitlines() if line.startswith("CMD"))
    assert "--allow-open" not in command
    assert "RAGSEARCH_ALLOW_OPEN_REMOTE" not in dockerfile


# --- what a key may spend ------------------------------------------------------------------

ANSWER = {"query": "How do I back up the data directory?", "collection": "docs"}


class Today:
    """A UTC date the test moves by hand."""

    def __init__(self) -> None:
        self.day = date(2026, 1, 1)

    def __call__(self) -> date:
        return self.day


@contextmanager
def answering(settings: Settings, today: Today | None = None) -> Iterator[TestClient]:
    """A loaded app whose chat model is scripted (110 tokens per answer)."""
    engine = Engine(settings, chat=ScriptedChat(["Stop writers first [1]."]))
    app = create_app(settings, engine=engine, today=today or Today(), writer_lock_timeout=0)
    try:
        with TestClient(app) as client:
            yield client
    finally:
        asyncio.run(engine.aclose())


def test_widget_and_read_keys_get_the_servers_model_only(seeded: Settings) -> None:
    widget = bearer(new_key(seeded, "site", ["read"], collections=["docs"], allowed_origins=[SITE]))
    reader = bearer(new_key(seeded, "reader", ["read"]))
    admin = bearer(new_key(seeded, "ops", ["admin"]))
    expensive = {**ANSWER, "model": "glm-4-plus-EXPENSIVE"}
    with answering(seeded) as client:
        for key in (widget, reader):
            refused = client.post("/v1/answer", json=expensive, headers=key)
            assert "glm-4-plus-EXPENSIVE" in assert_error(refused, 403, "forbidden")["message"]
            assert client.post("/v1/answer", json=ANSWER, headers=key).status_code == 200
        chosen = client.post("/v1/answer", json=expensive, headers=admin)
    assert chosen.status_code == 200, chosen.text
    assert chosen.json()["model"] == "glm-4-plus-EXPENSIVE"


def test_key_models_setting_lets_keys_choose_listed_models(seeded: Settings) -> None:
    settings = seeded.model_copy(update={"key_models": ["glm-4-flash"]})
    reader = bearer(new_key(settings, "reader", ["read"]))
    with answering(settings) as client:
        listed = client.post("/v1/answer", json={**ANSWER, "model": "glm-4-flash"}, headers=reader)
        other = client.post("/v1/answer", json={**ANSWER, "model": "glm-4-plus"}, headers=reader)
    assert listed.status_code == 200, listed.text
    assert_error(other, 403, "forbidden")


def test_whole_document_answers_need_their_own_scope(seeded: Settings) -> None:
    widget = bearer(new_key(seeded, "site", ["read"], collections=["docs"], allowed_origins=[SITE]))
    reader = bearer(new_key(seeded, "reader", ["read"]))
    long_reader = bearer(new_key(seeded, "long", ["documents"]))
    whole = {**ANSWER, "scope": "documents", "document_ids": [1]}
    with answering(seeded) as client:
        for key in (widget, reader):
            refused = client.post("/v1/answer", json=whole, headers=key)
            assert "'documents' scope" in assert_error(refused, 403, "forbidden")["message"]
        allowed = client.post("/v1/answer", json=whole, headers=long_reader)
    assert allowed.status_code == 200, allowed.text


def test_a_key_stops_answering_when_its_daily_tokens_are_spent(seeded: Settings) -> None:
    settings = seeded.model_copy(update={"key_daily_tokens": 100})
    today = Today()
    reader = bearer(new_key(settings, "reader", ["read"]))
    other = bearer(new_key(settings, "other", ["read"]))
    chat = {"model": "ragsearch:docs", "messages": [{"role": "user", "content": "backup?"}]}
    with answering(settings, today) as client:
        first = client.post("/v1/answer", json=ANSWER, headers=reader)
        second = client.post("/v1/answer", json=ANSWER, headers=reader)
        chatted = client.post("/v1/chat/completions", json=chat, headers=reader)
        someone_else = client.post("/v1/answer", json=ANSWER, headers=other)
        today.day += timedelta(days=1)
        tomorrow = client.post("/v1/answer", json=ANSWER, headers=reader)
    assert first.status_code == 200, first.text
    assert "100" in assert_error(second, 429, "rate_limited")["message"]
    assert chatted.status_code == 429
    assert someone_else.status_code == 200
    assert tomorrow.status_code == 200


def test_streamed_chat_answers_count_against_the_keys_budget(seeded: Settings) -> None:
    settings = seeded.model_copy(update={"key_daily_tokens": 20})  # one chat reports ~24
    reader = bearer(new_key(settings, "reader", ["read"]))
    chat = {
        "model": "ragsearch:docs",
        "messages": [{"role": "user", "content": "backup?"}],
        "stream": True,
    }
    with answering(settings) as client:
        streamed = client.post("/v1/chat/completions", json=chat, headers=reader)
        again = client.post("/v1/chat/completions", json=chat, headers=reader)
        answer = client.post("/v1/answer", json=ANSWER, headers=reader)
    assert streamed.status_code == 200 and "[DONE]" in streamed.text
    assert again.status_code == 429  # the stream spent the day's tokens
    assert answer.status_code == 429


def test_a_keys_daily_budget_holds_across_restarts_and_replicas(seeded: Settings) -> None:
    settings = seeded.model_copy(update={"key_daily_tokens": 100})
    today = Today()
    reader = bearer(new_key(settings, "reader", ["read"]))
    with answering(settings, today) as replica_a, answering(settings, today) as replica_b:
        spent = replica_a.post("/v1/answer", json=ANSWER, headers=reader)
        elsewhere = replica_b.post("/v1/answer", json=ANSWER, headers=reader)
    with answering(settings, today) as restarted:
        after_restart = restarted.post("/v1/answer", json=ANSWER, headers=reader)
    assert spent.status_code == 200, spent.text
    assert elsewhere.status_code == 429  # the other replica sees the spend
    assert after_restart.status_code == 429  # and a restart does not reset it


def test_concurrent_charges_all_count(seeded: Settings) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from indexer.catalog import Catalog

    day = date(2026, 1, 1)
    catalog = Catalog(seeded.resolved_catalog_url)
    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _: catalog.add_tokens_spent(7, day, 5), range(40)))
        assert catalog.tokens_spent(7, day) == 200
        assert catalog.tokens_spent(7, day + timedelta(days=1)) == 0
        assert catalog.tokens_spent(8, day) == 0
    finally:
        catalog.close()


def test_a_charge_the_catalog_cannot_take_is_logged_and_the_answer_stands(
    seeded: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    import sqlite3

    from indexer.catalog import Catalog
    from service.http.auth import Principal
    from service.http.budget import TokenBudget

    catalog = Catalog(seeded.resolved_catalog_url)
    reader = Principal(name="reader", scopes=frozenset({"read"}), collections=None, key_id=7)
    usage = [{"prompt_tokens": 10, "completion_tokens": 5}]
    try:
        with sqlite3.connect(str(catalog.engine.url.database)) as damage:
            damage.execute("DROP TABLE key_token_spend")  # a damaged catalog
        asyncio.run(TokenBudget(100, Today()).charge(catalog, reader, usage))  # no raise
    finally:
        catalog.close()
    assert "could not charge 15 tokens to key 'reader'" in caplog.text


def test_mcp_answers_count_against_the_keys_budget(seeded: Settings) -> None:
    from mcp import Client

    from service.http.auth import Principal
    from service.http.budget import TokenBudget
    from service.http.mcp_server import Caller, build_server

    engine = Engine(seeded, chat=ScriptedChat(["Stop writers first [1]."]))
    reader = Principal(name="reader", scopes=frozenset({"read"}), collections=None, key_id=7)
    budget = TokenBudget(100, Today())
    server = build_server(lambda _ctx: Caller(engine, reader, budget))

    async def twice() -> list[Any]:
        async with Client(server) as mcp:
            return [await mcp.call_tool("answer", ANSWER) for _ in range(2)]

    try:
        first, second = asyncio.run(twice())
    finally:
        asyncio.run(engine.aclose())
    assert not first.is_error
    assert second.is_error and "rate_limited" in second.content[0].text
