"""`ragsearch import` and `export`: chunks with their own vectors, checked, round-tripped."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import Result

from indexer.index import Index
from indexer.providers.local import HashingEmbedder
from tests.conftest import Cli

DIMS = 256
MODEL = "hashing-256"


def embed(text: str) -> np.ndarray:
    return asyncio.run(HashingEmbedder(DIMS).embed_query(text)).vectors[0]


def rows(texts: dict[str, list[str]], model: str | None = MODEL) -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for source, chunk_texts in texts.items():
        for text in chunk_texts:
            vector = embed(text) * 3.0  # not unit length on purpose
            row = {"source": source, "text": text, "vector": vector.tolist()}
            row["metadata"] = {"lang": "en", "source_file": source}
            if model:
                row["model"] = model
            out.append(row)
    return out


def expect(result: Result, code: int) -> Result:
    assert result.exit_code == code, result.stderr
    return result


def write_jsonl(path: Path, records: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


CORPUS = {
    "kb/apples": ["Apples grow on trees in orchards.", "Apple pie needs cinnamon."],
    "kb/ppr": ["Error PPR-9087 means the printer queue is full."],
}


@pytest.fixture
def collection(cli: Cli) -> str:
    cli.create_collection("docs")
    return "docs"


def test_import_makes_chunks_searchable_both_ways(
    cli: Cli, collection: str, tmp_path: Path, index: Index
) -> None:
    file = write_jsonl(tmp_path / "in.jsonl", rows(CORPUS))

    report = cli.json("import", file, "-c", collection)

    assert (report["added"], report["chunks"], report["embedded"]) == (2, 3, 0)
    target = index.catalog.get_collection(collection)
    lexical = index.catalog.lexical_search(target.id, "PPR-9087", 5)
    found = index.catalog.chunks_by_ids([i for i, _ in lexical])
    assert {c.source for c in found.values()} == {"kb/ppr"}
    query = embed("Apple pie needs cinnamon.")
    best, score = index.store(target).search(query, 1)[0]
    assert index.catalog.chunks_by_ids([best])[best].text == "Apple pie needs cinnamon."
    assert score == pytest.approx(1.0, abs=1e-5)  # stored at unit length
    assert cli.json("status")["collections"][0]["consistent"] is True


def test_import_twice_changes_nothing_and_a_changed_document_replaces_its_chunks(
    cli: Cli, collection: str, tmp_path: Path
) -> None:
    file = write_jsonl(tmp_path / "in.jsonl", rows(CORPUS))
    cli.json("import", file, "-c", collection)

    again = cli.json("import", file, "-c", collection)
    changed = dict(CORPUS, **{"kb/ppr": ["Error PPR-9088 means the tray is empty."]})
    file = write_jsonl(tmp_path / "in.jsonl", rows(changed))
    updated = cli.json("import", file, "-c", collection)

    assert (again["unchanged"], again["chunks"]) == (2, 0)
    assert (updated["unchanged"], updated["updated"], updated["chunks"]) == (1, 1, 1)
    status = cli.json("status")["collections"][0]
    assert (status["chunks"], status["vectors"], status["consistent"]) == (3, 3, True)


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_export_then_import_into_a_new_collection_round_trips(
    cli: Cli, collection: str, tmp_path: Path, index: Index, suffix: str
) -> None:
    cli.json("import", write_jsonl(tmp_path / "in.jsonl", rows(CORPUS)), "-c", collection)
    out = tmp_path / f"out{suffix}"
    expect(cli("export", "-c", collection, "-o", out), 0)
    cli.create_collection("copy")

    report = cli.json("import", out, "-c", "copy")

    assert report["chunks"] == 3
    original = index.catalog.get_collection(collection)
    copy = index.catalog.get_collection("copy")
    for target in (original, copy):
        query = asyncio.run(
            HashingEmbedder(DIMS).embed_query("Apples grow on trees in orchards.")
        ).vectors[0]
        best, _ = index.store(target).search(query, 1)[0]
        chunk = index.catalog.chunks_by_ids([best])[best]
        assert (chunk.text, chunk.source) == ("Apples grow on trees in orchards.", "kb/apples")
        assert chunk.metadata == {"lang": "en", "source_file": "kb/apples"}


def test_export_to_stdout_is_json_lines_with_the_model(
    cli: Cli, collection: str, tmp_path: Path
) -> None:
    cli.json("import", write_jsonl(tmp_path / "in.jsonl", rows(CORPUS)), "-c", collection)

    result = expect(cli("export", "-c", collection), 0)

    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["source"], r["model"]) for r in lines] == [
        ("kb/apples", MODEL),
        ("kb/apples", MODEL),
        ("kb/ppr", MODEL),
    ]
    assert np.linalg.norm(lines[0]["vector"]) == pytest.approx(1.0, abs=1e-5)


def test_import_refuses_another_model_or_dimension_and_writes_nothing(
    cli: Cli, collection: str, tmp_path: Path
) -> None:
    foreign = write_jsonl(tmp_path / "foreign.jsonl", rows(CORPUS, model="all-MiniLM-L6-v2"))
    unnamed = write_jsonl(tmp_path / "unnamed.jsonl", rows(CORPUS, model=None))
    short = rows(CORPUS)
    short[0]["vector"] = [0.1] * 8
    short = [short[0]]

    wrong_model = expect(cli("import", foreign, "-c", collection), 4)
    no_model = expect(cli("import", unnamed, "-c", collection), 2)
    assert cli.json("status")["collections"][0]["chunks"] == 0
    declared = cli.json("import", unnamed, "-c", collection, "--model", MODEL)
    wrong_dims = expect(
        cli("import", write_jsonl(tmp_path / "s.jsonl", short), "-c", collection), 4
    )

    assert "all-MiniLM-L6-v2" in wrong_model.stderr and MODEL in wrong_model.stderr
    assert "--model" in no_model.stderr
    assert declared["chunks"] == 3
    assert "8-dimensional" in wrong_dims.stderr and "256" in wrong_dims.stderr


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "line 1: not JSON"),
        ('{"source": "a", "text": "x"}', "`vector` must be"),
        ('{"source": "a", "text": "x", "vector": [1, "a"]}', "`vector` must be"),
        ('{"source": "", "text": "x", "vector": [1]}', "`source` must be"),
        ('{"source": "a", "text": "x", "vector": [' + "0, " * 255 + "0]}", "all zeros"),
    ],
)
def test_import_bad_rows_are_refused_with_where(
    cli: Cli, collection: str, tmp_path: Path, line: str, message: str
) -> None:
    file = tmp_path / "bad.jsonl"
    file.write_text(line + "\n", encoding="utf-8")

    result = expect(cli("import", file, "-c", collection, "--model", MODEL), 2)

    assert message in result.stderr


def test_import_refuses_a_source_split_across_the_file(
    cli: Cli, collection: str, tmp_path: Path
) -> None:
    records = rows(CORPUS)
    file = write_jsonl(tmp_path / "in.jsonl", [records[0], records[2], records[1]])

    result = expect(cli("import", file, "-c", collection), 2)

    assert "not consecutive" in result.stderr


@pytest.mark.parametrize(
    "text", ["hello world", "北京是中华人民共和国的首都", "mixed 中文 😀 ok", ""]
)
def test_import_token_estimate_is_zhipus(text: str) -> None:
    from indexer.importer import estimate_tokens
    from indexer.providers import zhipu

    assert estimate_tokens(text) == zhipu.estimate_tokens(text)
