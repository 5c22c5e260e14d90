"""The operators' console in a real browser: headless Chromium against a live server.

Signs in with an admin key, creates a collection, uploads files (one broken), browses and
searches documents, reads a document's chunks, deletes one, runs search and answer in the
playground, creates and revokes a key, drops the collection, then does it in Chinese. No
console errors allowed. Screenshots go to `test-artifacts/console-*.png`.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from indexer.index import Index
from indexer.settings import Settings
from service.http.app import create_app
from service.http.auth import create_key
from tests.conftest import DATA, INGEST_DATA
from tests.fakes.live_server import LiveServer
from tests.service.chatbots import build_corpus
from tests.service.http.test_widget_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"
)


@pytest.fixture
def console(tmp_path: Path) -> Iterator[tuple[Any, str, list[str]]]:
    """A signed-out console page on a live server with the chatbot corpus and an admin key."""
    from playwright.sync_api import sync_playwright

    settings = Settings(data_dir=tmp_path / "data")
    build_corpus(settings)
    index = Index(settings, writer=True)
    try:
        secret, _ = create_key(index.catalog, "ops", ["admin"])
    finally:
        index.close()
    with LiveServer(create_app(settings)) as api, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.goto(f"{api.url}/console")
            yield page, secret, errors
        finally:
            browser.close()


def sign_in(page: Any, secret: str) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#signin")).to_be_visible()
    page.locator("#signin-key").fill(secret)
    page.locator("#signin form button[type=submit]").click()
    expect(page.locator('#collections-table tr[data-collection="docs"]')).to_be_visible()


def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"console-{name}.png"), full_page=True)


def test_console_manages_collections_documents_and_keys_in_chromium(
    console: tuple[Any, str, list[str]],
) -> None:
    from playwright.sync_api import expect

    page, secret, errors = console
    sign_in(page, secret)
    assert secret not in page.url
    assert page.evaluate("sessionStorage.getItem('ragsearch.console.key')") == secret
    row = page.locator('#collections-table tr[data-collection="docs"]')
    expect(row.locator("td").nth(4)).to_have_text("5")

    page.locator("#cc-name").fill("uploads")
    page.locator("#cc-embedder").select_option("hashing")
    page.locator("#create-collection button[type=submit]").click()
    uploads_row = page.locator('#collections-table tr[data-collection="uploads"]')
    expect(uploads_row).to_be_visible()
    shot(page, "collections")

    uploads_row.get_by_role("button", name="Open").click()
    expect(page.locator("#docs-collection-name")).to_have_text("uploads")
    page.locator("#upload-metadata").fill('{"team": "ops"}')
    page.locator("#upload-files").set_input_files(
        [INGEST_DATA / "guide.md", INGEST_DATA / "chinese.md", DATA / "broken.pdf"]
    )
    results = page.locator("#upload-list li")
    expect(results.nth(0).locator("span").nth(1)).to_contain_text("added", timeout=15_000)
    expect(results.nth(1).locator("span").nth(1)).to_contain_text("added", timeout=15_000)
    expect(results.nth(2).locator("span").nth(1)).to_have_class("status-bad", timeout=15_000)
    expect(page.locator("#docs-table tbody tr")).to_have_count(2)

    page.locator("#docs-search").fill("guide")
    expect(page.locator("#docs-table tbody tr")).to_have_count(1)
    shot(page, "documents")
    page.locator("#docs-table tbody tr").first.click()
    expect(page.locator("#doc-view")).to_be_visible()
    expect(page.locator("#doc-metadata")).to_contain_text("team")
    chunk = page.locator("#doc-chunks li").first
    expect(chunk.locator(".heading-path")).not_to_be_empty()
    expect(chunk.locator(".chunk-meta")).to_contain_text("span 0–")
    shot(page, "document")
    page.locator("#doc-delete").click()
    page.locator("#doc-delete").click()
    expect(page.locator("#doc-view")).to_be_hidden()
    expect(page.locator("#docs-table tbody tr")).to_have_count(0)

    page.locator('#tabs a[data-tab="playground"]').click()
    page.locator("#play-collection").select_option("docs")
    page.locator("#play-query").fill("How often are logs rotated?")
    page.locator("#play-search").click()
    first = page.locator("#play-results li").first
    expect(first).to_contain_text("Logs are rotated every night")
    expect(first.locator('[data-retriever="lexical"]')).to_be_visible()
    expect(first.locator('[data-retriever="dense"]')).to_be_visible()
    expect(page.locator('.timings [data-stage="total"]')).to_be_visible()
    shot(page, "search")
    with page.expect_response("**/v1/answer") as answered:
        page.locator("#play-answer").click()
    assert answered.value.headers["content-type"].startswith("text/event-stream")
    expect(page.locator("#play-route")).to_contain_text("extractive")
    expect(page.locator("#play-answer-text .cite").first).to_have_text("[1]")
    expect(page.locator("#play-citations li").first).to_contain_text("logs.md")
    expect(page.locator("#play-sources li").first).to_be_visible()
    shot(page, "answer")

    page.locator('#tabs a[data-tab="keys"]').click()
    page.locator("#key-name").fill("shop widget")
    page.locator("#key-collections").fill("docs")
    page.locator("#key-origins").fill("https://shop.example")
    page.locator("#key-rate").fill("30")
    page.locator("#create-key button[type=submit]").click()
    expect(page.locator("#key-secret-value")).to_contain_text("rsk_")
    new_row = page.locator("#keys-table tbody tr").nth(1)
    expect(new_row).to_contain_text("(widget)")
    shot(page, "keys")
    new_row.get_by_role("button", name="Revoke").click()
    expect(new_row).to_have_class("revoked")

    page.locator('#tabs a[data-tab="collections"]').click()
    page.locator('#collections-table tr[data-collection="uploads"]').get_by_role(
        "button", name="Drop"
    ).click()
    expect(page.locator("#drop-yes")).to_be_disabled()
    page.locator("#drop-typed").fill("uploads")
    page.locator("#drop-yes").click()
    expect(page.locator('#collections-table tr[data-collection="uploads"]')).to_have_count(0)
    # Chromium logs every failed request; the broken PDF's 422 is the only one expected.
    assert errors == [
        "Failed to load resource: the server responded with a status of 422 (Unprocessable Entity)"
    ]


def test_console_speaks_chinese_and_searches_chinese_text(
    console: tuple[Any, str, list[str]],
) -> None:
    from playwright.sync_api import expect

    page, secret, errors = console
    page.locator("#lang").click()
    expect(page.locator("#signin h1")).to_have_text("登录")
    sign_in(page, secret)
    expect(page.locator('#tabs a[data-tab="collections"]')).to_have_text("集合")

    page.locator('#tabs a[data-tab="playground"]').click()
    page.locator("#play-collection").select_option("docs")
    page.locator("#play-query").fill("日志保留多久？")
    page.locator("#play-search").click()
    expect(page.locator("#play-results li").first).to_contain_text("日志")
    page.locator("#play-answer").click()
    expect(page.locator("#play-citations li").first).to_contain_text("日志.md")
    shot(page, "answer-zh")

    page.reload()  # the key survives a reload of this tab, the language too
    expect(page.locator('#tabs a[data-tab="playground"]')).to_have_text("检索试验")
    assert errors == []


def test_console_runs_an_upload_as_a_job_and_follows_it(
    console: tuple[Any, str, list[str]],
) -> None:
    from playwright.sync_api import expect

    page, secret, errors = console
    sign_in(page, secret)
    page.locator('#collections-table tr[data-collection="docs"]').get_by_role(
        "button", name="Open"
    ).click()
    expect(page.locator("#docs-collection-name")).to_have_text("docs")
    page.locator("#upload-async").check()
    page.locator("#upload-files").set_input_files(
        [INGEST_DATA / "guide.md", INGEST_DATA / "notes.txt"]
    )
    results = page.locator("#upload-list li")
    expect(results.nth(1).locator("span").nth(1)).to_contain_text("Job started", timeout=15_000)

    page.locator('#tabs a[data-tab="jobs"]').click()
    rows = page.locator("#jobs-table tbody tr")
    expect(rows).to_have_count(2)
    for n in range(2):
        expect(rows.nth(n)).to_have_attribute("data-status", "done", timeout=15_000)
    expect(rows.first).to_contain_text("1/1")
    shot(page, "jobs")
    assert errors == []
