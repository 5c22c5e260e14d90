"""The widget in a real browser: headless Chromium on a host page from another origin.

Two uvicorn servers on 127.0.0.1: ragsearch, and a tiny site whose page carries the script
tag, so every API call is cross-origin (CORS preflight included). Needs /usr/bin/chromium
(Debian's `chromium` package) and the `playwright` Python package, not its browser download.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from indexer.index import Index
from indexer.settings import Settings
from service.http.app import create_app
from service.http.auth import create_key
from tests.fakes.live_server import LiveServer
from tests.service.chatbots import build_corpus

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.slow,  # a real browser
    pytest.mark.skipif(
        shutil.which(CHROMIUM) is None,
        reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)",
    ),
]


def host_site(api: str, key: str) -> Starlette:
    """A shop page that embeds the widget, themed through CSS variables."""
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Shop</title>
<style>:root {{ --ragsearch-accent: #0f766e; }}
body {{ font-family: sans-serif; margin: 40px; }}</style>
</head><body><h1>Example shop</h1><p>Questions? Ask the assistant in the corner.</p>
<script src="{api}/widget.js" data-collection="docs" data-key="{key}"
        data-position="bottom-right" data-title="Shop help"></script>
</body></html>"""

    async def home(_: Request) -> HTMLResponse:
        return HTMLResponse(page)

    return Starlette(routes=[Route("/", home)])


def test_widget_streams_a_cited_answer_in_chromium(tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    settings = Settings(data_dir=tmp_path / "data")
    build_corpus(settings)
    with LiveServer(create_app(settings)) as api:
        site = LiveServer(Starlette())  # bound now, so its origin is known for the key
        index = Index(settings, writer=True)
        try:
            key, _ = create_key(
                index.catalog,
                "shop",
                ["read"],
                collections=["docs"],
                allowed_origins=[site.url],
                rate_per_minute=60,
            )
        finally:
            index.close()
        site._server.config.app = host_site(api.url, key)
        with site, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1000, "height": 720})
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.goto(site.url)
                page.locator(".bubble").click()
                page.locator("textarea").fill("How often are logs rotated?")
                page.locator("textarea").press("Enter")
                answer = page.locator(".msg.assistant").nth(0)
                expect(answer).to_have_attribute("data-done", "true", timeout=10_000)
                expect(answer.locator(".text")).to_contain_text("rotated every night")
                expect(answer.locator(".cite").first).to_have_text("[1]")
                citation = answer.locator(".citation").first
                expect(citation.locator("a")).to_have_attribute(
                    "href", "https://docs.example/logs.md"
                )
                expect(citation.locator(".snippet")).to_contain_text("Logs are rotated")

                page.locator("textarea").fill("How long are they kept?")
                page.locator("textarea").press("Enter")
                follow = page.locator(".msg.assistant").nth(1)
                expect(follow).to_have_attribute("data-done", "true", timeout=10_000)
                expect(follow.locator(".text")).to_contain_text("7 days")
                assert "error" not in (follow.get_attribute("class") or "")
                assert errors == []
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "widget.png"))
            finally:
                browser.close()


MARKDOWN_ANSWER = [
    "**Logs** are rotated `nightly` [1].\n\n- first item\n- second item\n\n",
    "```\nrotate <b>now</b>\n```\n",
    '<img src=x onerror="window.hacked=1"> see [the page](https://docs.example/logs.md) ',
    "or [this](javascript:window.hacked=1).",
]


def test_widget_renders_safe_markdown_greeting_and_suggestions(tmp_path: Path) -> None:
    import asyncio

    from playwright.sync_api import expect, sync_playwright

    from service.query.engine import Engine
    from tests.service.conftest import ScriptedChat

    settings = Settings(data_dir=tmp_path / "data")
    build_corpus(settings)
    engine = Engine(settings, chat=ScriptedChat(MARKDOWN_ANSWER))
    page_html = """<!doctype html><html lang="en"><head><meta charset="utf-8"></head><body>
<script src="{api}/widget.js" data-collection="docs" data-key="{key}"
        data-greeting="Welcome to the shop!"
        data-suggestions='["How often are logs rotated?", "How long are logs kept?"]'></script>
</body></html>"""
    try:
        with LiveServer(create_app(settings, engine=engine)) as api:
            site = LiveServer(Starlette())
            index = Index(settings, writer=True)
            try:
                key, _ = create_key(
                    index.catalog,
                    "shop",
                    ["read"],
                    collections=["docs"],
                    allowed_origins=[site.url],
                )
            finally:
                index.close()
            html = page_html.replace("{api}", api.url).replace("{key}", key)
            site._server.config.app = Starlette(routes=[Route("/", lambda _: HTMLResponse(html))])
            with site, sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    page = browser.new_page()
                    errors: list[str] = []
                    page.on("pageerror", lambda exc: errors.append(str(exc)))
                    page.goto(site.url)
                    page.locator(".bubble").click()
                    expect(page.locator(".greeting")).to_have_text("Welcome to the shop!")
                    expect(page.locator(".suggestion")).to_have_count(2)
                    page.locator(".suggestion").first.click()
                    expect(page.locator(".suggestions")).to_have_count(0)
                    expect(page.locator(".msg.user")).to_have_text("How often are logs rotated?")
                    answer = page.locator(".msg.assistant").nth(0)
                    expect(answer).to_have_attribute("data-done", "true", timeout=10_000)
                    text = answer.locator(".text")
                    expect(text.locator("strong")).to_have_text("Logs")
                    expect(text.locator("p code")).to_have_text("nightly")
                    expect(text.locator("li")).to_have_count(2)
                    expect(text.locator("pre code")).to_have_text("rotate <b>now</b>")
                    expect(text.locator("img")).to_have_count(0)
                    expect(text.locator("b")).to_have_count(0)
                    links = text.locator("a")
                    expect(links).to_have_count(1)
                    expect(links).to_have_attribute("href", "https://docs.example/logs.md")
                    expect(text).to_contain_text('<img src=x onerror="window.hacked=1">')
                    assert page.evaluate("window.hacked") is None
                    assert errors == []
                finally:
                    browser.close()
    finally:
        asyncio.run(engine.aclose())
