"""The CLI shows what it holds and matches HTTP: show, metadata, filters, JSON, keys, locks."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from indexer.settings import Settings
from service.http.app import create_app
from tests.conftest import INGEST_DATA, Cli


@pytest.fixture
def filled(cli: Cli, tmp_path: Path) -> Cli:
    """Collection `docs` (hashing embedder) with guide.md and chinese.md, tagged by metadata."""
    cli.create_collection()
    sidecar = tmp_path / "meta.json"
    sidecar.write_text(json.dumps({"team": "docs", "reviewed": True}), encoding="utf-8")
    result = cli(
        "ingest",
        INGEST_DATA / "guide.md",
        INGEST_DATA / "chinese.md",
        "-c",
        "docs",
        "--metadata-file",
        sidecar,
        "-m",
        "team=ops",
        "--metadata",
        "year=2024",
    )
    assert result.exit_code == 0, result.stderr
    return cli


def http(settings: Settings, method: str, path: str, body: Any = None) -> Any:
    with TestClient(create_app(settings)) as client:
        response = client.request(method, path, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_ingest_metadata_from_pairs_and_a_sidecar_is_stored_typed(filled: Cli) -> None:
    docs = filled.json("documents", "-c", "docs")["documents"]

    for doc in docs:
        assert {k: doc["metadata"][k] for k in ("team", "year", "reviewed")} == {
            "team": "ops",
            "year": 2024,
            "reviewed": True,
        }


def test_first_ingest_into_an_empty_collection_prints_next_steps(cli: Cli) -> None:
    cli.create_collection()
    first = cli("ingest", INGEST_DATA / "guide.md", "-c", "docs")
    again = cli("ingest", INGEST_DATA / "notes.txt", "-c", "docs")

    assert "next steps:" in first.stderr
    assert 'ragsearch ask "your question" -c docs' in first.stderr
    assert "/console" in first.stderr
    assert "next steps" not in again.stderr
    assert "next steps" not in first.stdout


def test_bad_metadata_and_bad_filters_are_usage_errors(filled: Cli, tmp_path: Path) -> None:
    not_object = tmp_path / "list.json"
    not_object.write_text("[1, 2]", encoding="utf-8")

    pair = filled("ingest", INGEST_DATA / "notes.txt", "-c", "docs", "-m", "novalue")
    sidecar = filled(
        "ingest", INGEST_DATA / "notes.txt", "-c", "docs", "--metadata-file", not_object
    )
    bad_json = filled("search", "data", "-c", "docs", "--filter", "{team: ops}")
    bad_operator = filled("ask", "data", "-c", "docs", "--filter", '{"team": {"$near": 1}}')

    assert (pair.exit_code, sidecar.exit_code, bad_json.exit_code) == (2, 2, 2)
    assert "expected KEY=VALUE" in pair.stderr
    assert "expected a JSON object" in sidecar.stderr
    assert "--filter: not valid JSON" in bad_json.stderr
    assert bad_operator.exit_code == 2 and "$near" in bad_operator.stderr


def test_search_filter_and_json_match_http(filled: Cli, settings: Settings) -> None:
    request = {"query": "data directory", "collection": "docs", "top_k": 5}
    cli_body = filled.json("search", "data directory", "-c", "docs", "-k", "5")
    http_body = http(settings, "POST", "/v1/search", request)
    matching = filled.json("search", "data directory", "-c", "docs", "--filter", '{"year": 2024}')
    none = filled.json("search", "data directory", "-c", "docs", "--filter", '{"team": "x"}')

    assert set(cli_body) == set(http_body)
    assert cli_body["results"] == http_body["results"]
    assert set(cli_body["timings"]) == set(http_body["timings"])
    first = cli_body["results"][0]
    assert {"heading_path", "page", "span", "score", "scores"} <= set(first)
    assert set(first["scores"]) >= {"dense", "lexical"}
    assert matching["results"] and none["results"] == []


def test_search_text_output_explains_scores(filled: Cli) -> None:
    result = filled("search", "data directory", "-c", "docs", "-k", "1")

    assert result.exit_code == 0, result.stderr
    assert "dense " in result.stdout and "lexical " in result.stdout
    assert "Operator guide › " in result.stdout
    assert "(ms: " in result.stderr


def test_ask_json_matches_http_and_honours_the_filter(filled: Cli, settings: Settings) -> None:
    question = "Where is the writer lock?"
    cli_body = filled.json("ask", question, "-c", "docs")
    http_body = http(settings, "POST", "/v1/answer", {"query": question, "collection": "docs"})
    filtered = filled.json("ask", question, "-c", "docs", "--filter", '{"team": "nobody"}')

    assert set(cli_body) == set(http_body)
    assert cli_body["answer"] == http_body["answer"]
    assert cli_body["citations"] == http_body["citations"]
    assert cli_body["route"] and cli_body["timings"]
    assert filtered["citations"] == [] and filtered["grounded"] is False


def test_show_prints_text_and_chunks_by_id_or_path(filled: Cli, settings: Settings) -> None:
    docs = filled.json("documents", "-c", "docs")["documents"]
    guide = next(d for d in docs if d["source"].endswith("guide.md"))

    by_id = filled.json("show", str(guide["id"]), "-c", "docs")
    by_path = filled("show", str(INGEST_DATA / "guide.md"), "-c", "docs")
    http_doc = http(settings, "GET", f"/v1/collections/docs/documents/{guide['id']}")
    missing = filled("show", "nope.md", "-c", "docs")

    assert by_id["document"] == http_doc
    assert [c["heading_path"][-1] for c in by_id["chunks"]] == [
        "Installing",
        "Configuring",
        "Backing up",
    ]
    http_chunks = http(settings, "GET", f"/v1/collections/docs/documents/{guide['id']}/chunks")
    assert by_id["chunks"] == http_chunks["chunks"]
    assert by_path.exit_code == 0
    assert "--- text ---" in by_path.stdout and "--- 3 chunks ---" in by_path.stdout
    assert "Operator guide › Backing up · " in by_path.stdout
    assert "team: ops" in by_path.stdout
    assert missing.exit_code == 3 and "no document 'nope.md'" in missing.stderr


def test_keys_revoke_takes_the_id_or_prefix_that_keys_list_shows(cli: Cli) -> None:
    cli("keys", "create", "first")
    cli("keys", "create", "second")
    listed = cli("keys", "list").stdout.splitlines()
    first_id, _, _ = listed[0].split("\t")[:3]
    second_prefix = listed[1].split("\t")[2]  # shown with a trailing "…"

    by_id = cli("keys", "revoke", first_id)
    by_prefix = cli("keys", "revoke", second_prefix)

    assert by_id.exit_code == 0 and "'first'" in by_id.stdout
    assert by_prefix.exit_code == 0 and "'second'" in by_prefix.stdout
    assert second_prefix.endswith("…")
    assert cli.json("keys", "list") == {"keys": []}
    assert cli("keys", "revoke", first_id).exit_code == 3


ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_readme_eval_example_runs_on_the_dataset_in_the_repository(cli: Cli) -> None:
    assert "ragsearch eval scripts/sample_eval " in README
    cli.create_collection("eval-sample")  # the hashing embedder keeps the test fast

    body = cli.json("eval", ROOT / "scripts" / "sample_eval", "-c", "eval-sample")

    assert set(body) == {"hybrid", "dense", "lexical"}
    assert body["lexical"]["recall@10"] == 1.0


def test_readme_zhipu_collection_example_says_it_needs_a_key(cli: Cli) -> None:
    example = "ragsearch collections create papers --embedder zhipu --dimensions 1024"
    before = README[: README.index(example)].splitlines()[-1]
    assert "needs ZHIPUAI_API_KEY" in before

    result = cli(*example.split()[1:])

    assert result.exit_code == 6
    assert "set ZHIPUAI_API_KEY" in result.stderr


def test_readme_documents_every_exit_code_the_errors_use() -> None:
    from indexer import errors

    codes = {
        c.exit_code
        for c in vars(errors).values()
        if isinstance(c, type) and issubclass(c, errors.RagsearchError)
    }
    for code in codes | {0, 1, 130}:
        assert f"\n| {code} | " in README, code
    assert "**locked**" in README


def test_cli_ingests_a_url_only_where_allowed(cli: Cli) -> None:
    from tests.fakes.live_server import LiveServer
    from tests.indexer.test_url_fetch import Site

    cli.create_collection()
    web = Site()
    with LiveServer(web.app) as server:
        refused = cli("ingest", f"{server.url}/page", "-c", "docs")
        assert web.hosts == []
        allowed = cli(
            "ingest",
            f"{server.url}/page",
            INGEST_DATA / "notes.txt",
            "-c",
            "docs",
            "--json",
            env={"RAGSEARCH_URL_FETCH_ALLOWED_NETWORKS": '["127.0.0.0/8"]'},
        )

    assert refused.exit_code == 2
    assert "loopback" in refused.stderr
    assert allowed.exit_code == 0, allowed.stderr
    assert json.loads(allowed.stdout)["added"] == 2
    sources = [d["source"] for d in cli.json("documents", "-c", "docs")["documents"]]
    assert f"{server.url}/page" in sources


def test_help_lists_every_exit_code(cli: Cli) -> None:
    from indexer import errors

    shown = cli("--help").stdout
    codes = {c.exit_code for c in errors.ALL_ERRORS} | {0, 1, 130}

    listed = {int(n) for n in re.findall(r"^\s+(\d+)\s{2,}", shown, re.M)}
    assert listed == codes
    assert "locked" in shown
