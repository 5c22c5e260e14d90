"""The widget: its script and page, CORS for widget keys, and what a widget key may not do."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from indexer.settings import Settings
from service.http.app import create_app
from service.http.auth import create_key
from tests.service.chatbots import build_corpus

SITE = "https://shop.example"
QUESTION = "How often are logs rotated?"


class Clock:
    """A manual clock for the rate limiter."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Widget:
    client: TestClient
    key: str
    admin: str
    clock: Clock

    def headers(self, origin: str | None = SITE, key: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {key or self.key}"}
        if origin is not None:
            headers["Origin"] = origin
        return headers


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    settings = Settings(data_dir=tmp_path_factory.mktemp("widget") / "data")
    build_corpus(settings)
    return settings


@pytest.fixture
def widget(corpus: Settings) -> Iterator[Widget]:
    clock = Clock()
    with TestClient(create_app(corpus, clock=clock)) as client:
        catalog = client.app.state.engine.index.catalog  # type: ignore[attr-defined]
        key, _ = create_key(
            catalog,
            "shop",
            ["read"],
            collections=["docs"],
            allowed_origins=[SITE],
            rate_per_minute=5,
        )
        admin, _ = create_key(catalog, "admin", ["admin"])
        try:
            yield Widget(client, key, admin, clock)
        finally:
            from service.http.auth import revoke_key

            revoke_key(catalog, "shop")
            revoke_key(catalog, "admin")


# --- the script and the page -------------------------------------------------------------------


def test_widget_script_is_served_as_javascript_without_inner_html(widget: Widget) -> None:
    response = widget.client.get("/widget.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/javascript")
    assert "innerHTML" not in response.text and "insertAdjacentHTML" not in response.text
    assert "--ragsearch-accent" in response.text and "data.position" in response.text


def test_widget_page_escapes_its_parameters_and_limits_framing(widget: Widget) -> None:
    attack = '"><script>alert(1)</script>'
    page = widget.client.get("/widget", params={"collection": attack, "key": widget.key})
    assert page.status_code == 200
    assert "<script>alert(1)" not in page.text
    assert "&quot;&gt;&lt;script&gt;" in page.text
    assert f"frame-ancestors 'self' {SITE}" in page.headers["content-security-policy"]
    assert 'data-mode="inline"' in page.text and 'src="widget.js"' in page.text


def test_widget_page_needs_a_collection(widget: Widget) -> None:
    response = widget.client.get("/widget")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


# --- CORS ----------------------------------------------------------------------------------------


def _preflight(client: TestClient, origin: str) -> dict[str, str]:
    response = client.options(
        "/v1/chat/completions",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    return {"status": str(response.status_code), **response.headers}


def test_preflight_is_answered_only_for_widget_origins(widget: Widget) -> None:
    allowed = _preflight(widget.client, SITE)
    assert allowed["status"] == "204"
    assert allowed["access-control-allow-origin"] == SITE
    assert "authorization" in allowed["access-control-allow-headers"]
    refused = _preflight(widget.client, "https://evil.example")
    assert refused["status"] == "403"
    assert "access-control-allow-origin" not in refused


def test_responses_echo_only_the_keys_allowed_origin(widget: Widget) -> None:
    body = {"query": QUESTION, "collection": "docs"}
    ok = widget.client.post("/v1/search", json=body, headers=widget.headers())
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == SITE
    assert "x-request-id" in ok.headers["access-control-expose-headers"]
    foreign = widget.client.post(
        "/v1/search", json=body, headers=widget.headers("https://evil.example")
    )
    assert foreign.status_code == 403
    assert "access-control-allow-origin" not in foreign.headers
    admin = widget.client.post("/v1/search", json=body, headers=widget.headers(key=widget.admin))
    assert admin.status_code == 200
    assert "access-control-allow-origin" not in admin.headers  # not a widget key for SITE


def test_widget_streams_chat_cross_origin(widget: Widget) -> None:
    body = {
        "model": "ragsearch:docs",
        "stream": True,
        "messages": [{"role": "user", "content": QUESTION}],
    }
    with widget.client.stream(
        "POST", "/v1/chat/completions", json=body, headers=widget.headers()
    ) as response:
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == SITE
        lines = list(response.iter_lines())
    assert lines[-2:] == ["data: [DONE]", ""] or lines[-1] == "data: [DONE]"


# --- what a widget key may not do -----------------------------------------------------------------


def test_widget_key_cannot_list_collections(widget: Widget) -> None:
    response = widget.client.get("/v1/collections", headers=widget.headers())
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"


def test_widget_key_cannot_upload_or_delete(widget: Widget) -> None:
    upload = widget.client.post(
        "/v1/collections/docs/documents",
        files={"file": ("x.md", b"# X\n\nInjected text.", "text/markdown")},
        headers=widget.headers(),
    )
    assert upload.status_code == 403
    docs = widget.client.get(
        "/v1/collections/docs/documents", headers=widget.headers(key=widget.admin)
    )
    first = docs.json()["documents"][0]["id"]
    for path in (f"/v1/collections/docs/documents/{first}", "/v1/collections/docs"):
        deleted = widget.client.delete(path, headers=widget.headers())
        assert deleted.status_code == 403, path
    still = widget.client.get(
        "/v1/collections/docs/documents", headers=widget.headers(key=widget.admin)
    )
    assert len(still.json()["documents"]) == 5


def test_widget_key_cannot_query_another_collection(widget: Widget) -> None:
    for path, body in (
        ("/v1/search", {"query": "payroll", "collection": "other"}),
        ("/v1/answer", {"query": "payroll", "collection": "other"}),
    ):
        response = widget.client.post(path, json=body, headers=widget.headers())
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "forbidden"
    chat = widget.client.post(
        "/v1/chat/completions",
        json={"model": "ragsearch:other", "messages": [{"role": "user", "content": "payroll"}]},
        headers=widget.headers(),
    )
    assert chat.status_code == 403
    assert chat.json()["error"]["type"] == "permission_error"
    models = widget.client.get("/v1/models", headers=widget.headers()).json()
    assert [m["id"] for m in models["data"]] == ["ragsearch", "ragsearch:docs"]


def test_widget_key_is_rate_limited(widget: Widget) -> None:
    body = {"model": "ragsearch", "messages": [{"role": "user", "content": QUESTION}]}
    statuses = [
        widget.client.post("/v1/chat/completions", json=body, headers=widget.headers()).status_code
        for _ in range(6)
    ]
    assert statuses == [200] * 5 + [429]
    limited = widget.client.post("/v1/chat/completions", json=body, headers=widget.headers())
    assert limited.json()["error"]["type"] == "rate_limit_error"
    assert int(limited.headers["retry-after"]) >= 1
    widget.clock.now += 60
    again = widget.client.post("/v1/chat/completions", json=body, headers=widget.headers())
    assert again.status_code == 200
