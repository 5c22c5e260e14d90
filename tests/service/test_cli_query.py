"""`ragsearch search`, `ask` and `eval` on a hashing-embedder collection (no key: extractive)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Cli

TINY = Path(__file__).resolve().parent.parent / "data" / "beir_tiny"


@pytest.fixture
def filled(cli: Cli, docs: Path) -> Cli:
    cli.create_collection()
    cli.json("ingest", docs, "-c", "docs")
    return cli


def test_cli_search_json_ranks_the_matching_chunk_first(filled: Cli) -> None:
    results = filled.json("search", "PPR-9087", "-c", "docs", "-k", "2", "--mode", "lexical")

    assert len(results["results"]) == 1  # only the incident notes name the ticket
    assert Path(results["results"][0]["source"]).name == "notes.txt"
    assert set(results["results"][0]) >= {"chunk_id", "document_id", "title", "text", "score"}


def test_cli_search_text_prints_ranked_lines(filled: Cli) -> None:
    result = filled("search", "publish the changelog", "-c", "docs", "--mode", "lexical")

    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("1. [")
    assert result.stdout.splitlines()[0].endswith("release.md")


def test_cli_search_of_a_missing_collection_exits_3(filled: Cli) -> None:
    result = filled("search", "anything", "-c", "nope")

    assert (result.exit_code, result.stderr) == (3, "error: collection 'nope' does not exist\n")


def test_cli_ask_json_answers_with_citations(filled: Cli) -> None:
    body = filled.json("ask", "what is in the release notes", "-c", "docs")

    assert body["answer"]
    assert body["model"] == "extractive"
    # The same citation fields as HTTP (`tests/service/test_cli_show_and_filters.py`).
    assert all(
        set(c) >= {"n", "chunk_id", "document_id", "source", "snippet"} for c in body["citations"]
    )
    assert body["citations"] and body["route"]


def test_cli_eval_reports_metrics_per_mode(cli: Cli) -> None:
    cli.create_collection("tiny")

    scores = cli.json("eval", TINY, "-c", "tiny", "--mode", "lexical")

    assert list(scores) == ["lexical"]
    assert scores["lexical"]["queries"] == 2
    assert scores["lexical"]["mrr@10"] == 1.0
