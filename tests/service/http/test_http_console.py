"""What the console needs from HTTP: page and assets, keys, a document's chunks, document search."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from indexer.settings import Settings
from service.http.console import CONSOLE_CSP
from tests.service.conftest import assert_error, bearer, new_key

STATIC = ("/console", "/console/console.js", "/console/console.css")


def test_console_page_and_assets_are_served_offline_under_a_strict_csp(client: TestClient) -> None:
    responses = {path: client.get(path) for path in STATIC}

    for path, response in responses.items():
        assert response.status_code == 200, path
        assert response.headers["content-security-policy"] == CONSOLE_CSP
    page = responses["/console"].text
    assert "frame-ancestors 'none'" in CONSOLE_CSP and "connect-src 'self'" in CONSOLE_CSP
    # Only local assets: no CDN, works offline.
    assert [u for u in re.findall(r'(?:src|href)="([^"]+)"', page) if u[0] not in "#d"] == [
        "/console/console.css",
        "/console/console.js",
    ]
    assert (
        responses["/console/console.js"]
        .headers["content-type"]
        .startswith("application/javascript")
    )


def test_console_script_never_parses_text_as_html_nor_puts_the_key_in_a_url(
    client: TestClient,
) -> None:
    script = client.get("/console/console.js").text

    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, sink
    assert "sessionStorage" in script and "localStorage.setItem(KEY_STORE" not in script
    assert "?key=" not in script and "&key=" not in script


def test_document_chunks_list_heading_path_page_and_span(loaded: TestClient) -> None:
    docs = loaded.get("/v1/collections/docs/documents").json()["documents"]
    guide = next(d for d in docs if d["source"] == "guide.md")

    body = loaded.get(f"/v1/collections/docs/documents/{guide['id']}/chunks").json()

    assert body["total"] == guide["chunks"] == len(body["chunks"])
    assert [c["ordinal"] for c in body["chunks"]] == sorted(c["ordinal"] for c in body["chunks"])
    first = body["chunks"][0]
    assert set(first) == {"chunk_id", "ordinal", "text", "heading_path", "page", "span"}
    assert first["heading_path"] and first["span"]["end"] > first["span"]["start"]
    paged = loaded.get(
        f"/v1/collections/docs/documents/{guide['id']}/chunks", params={"limit": 1, "offset": 1}
    ).json()
    assert [c["chunk_id"] for c in paged["chunks"]] == [body["chunks"][1]["chunk_id"]]
    assert_error(loaded.get("/v1/collections/docs/documents/999999/chunks"), 404, "not_found")


def test_document_list_searches_sources_and_titles(loaded: TestClient) -> None:
    found = loaded.get("/v1/collections/docs/documents", params={"q": "GUIDE"}).json()
    none = loaded.get("/v1/collections/docs/documents", params={"q": "no-such"}).json()

    assert [d["source"] for d in found["documents"]] == ["guide.md"]
    assert found["total"] == 1
    assert none == {"documents": [], "total": 0, "limit": 100, "offset": 0}


def test_admin_keys_create_list_and_revoke_over_http(seeded: Settings, loaded: TestClient) -> None:
    admin = bearer(new_key(seeded, "ops", ["admin"]))

    created = loaded.post(
        "/v1/keys",
        json={
            "name": "shop",
            "scopes": ["read"],
            "collections": ["docs"],
            "allowed_origins": ["https://shop.example"],
            "rate_per_minute": 20,
        },
        headers=admin,
    )
    assert created.status_code == 201, created.text
    secret, key_id = created.json()["key"], created.json()["id"]
    assert secret.startswith("rsk_") and created.json()["kind"] == "widget"
    listed = loaded.get("/v1/keys", headers=admin).json()["keys"]
    assert [k["name"] for k in listed] == ["ops", "shop"]
    assert all("key" not in k for k in listed)

    revoked = loaded.delete(f"/v1/keys/{key_id}", headers=admin)

    assert revoked.json() == {"revoked": key_id}
    assert_error(loaded.get("/v1/collections", headers=bearer(secret)), 401, "unauthorized")
    assert_error(loaded.delete(f"/v1/keys/{key_id}", headers=admin), 404, "not_found")


def test_keys_over_http_need_an_unlimited_admin_key(seeded: Settings, loaded: TestClient) -> None:
    admin = new_key(seeded, "ops", ["admin"])
    writer = bearer(new_key(seeded, "writer", ["write"]))
    limited = bearer(new_key(seeded, "docs-admin", ["admin"], collections=["docs"]))
    admin_id = loaded.get("/v1/keys", headers=bearer(admin)).json()["keys"][0]["id"]

    assert_error(loaded.get("/v1/keys", headers=writer), 403, "forbidden")
    assert_error(loaded.get("/v1/keys", headers=limited), 403, "forbidden")
    assert_error(loaded.post("/v1/keys", json={"name": "x"}, headers=limited), 403, "forbidden")
    assert_error(loaded.delete(f"/v1/keys/{admin_id}", headers=bearer(admin)), 400, "invalid_input")
    bad = loaded.post(
        "/v1/keys",
        json={"name": "w", "allowed_origins": ["https://a.example"]},
        headers=bearer(admin),
    )
    assert_error(bad, 400, "invalid_input")
    unknown = loaded.post(
        "/v1/keys", json={"name": "n", "collections": ["nope"]}, headers=bearer(admin)
    )
    assert_error(unknown, 404, "not_found")


def test_console_config_says_when_a_key_is_needed(client: TestClient, settings: Settings) -> None:
    from indexer.index import Index
    from service.http.auth import revoke_key

    open_now = client.get("/console/config.json").json()
    new_key(settings, "ops", ["admin"])
    keyed = client.get("/console/config.json").json()
    index = Index(settings)
    try:
        revoke_key(index.catalog, "ops")
    finally:
        index.close()
    all_revoked = client.get("/console/config.json").json()

    assert open_now == {"key_required": False, "jobs": True}
    assert keyed["key_required"] is True
    # Once keys have existed the service stays closed, and the page asks for a key.
    assert all_revoked["key_required"] is True
    assert client.get("/v1/collections").status_code == 401
