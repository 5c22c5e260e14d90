"""Wrong flags, settings and data directories get one line on stderr, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from indexer.collections import create_collection
from indexer.errors import InputError
from indexer.index import Index
from indexer.providers.factory import EmbedderCache, EmbedderSpec
from tests.conftest import Cli


def test_delete_with_an_id_beyond_any_catalog_id_is_a_usage_error(cli: Cli) -> None:
    cli.create_collection()

    result = cli("delete", "-c", "docs", "--id", "99999999999999999999")

    assert result.exit_code == 2
    assert "--id" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "flags",
    [("--chunk-tokens", "-5"), ("--chunk-tokens", "0"), ("--overlap", "-1"), ("--dimensions", "0")],
)
def test_collections_create_refuses_an_unusable_chunking_and_creates_nothing(
    cli: Cli, flags: tuple[str, str]
) -> None:
    result = cli("collections", "create", "bad", "--embedder", "hashing", *flags)

    assert result.exit_code == 2
    assert flags[0] in result.stderr
    assert cli.json("collections", "list") == {"collections": []}


def test_create_collection_refuses_a_chunk_budget_no_ingest_could_use(index: Index) -> None:
    embedders = EmbedderCache(index.settings)
    spec = EmbedderSpec("hashing", "hashing", 64)

    with pytest.raises(InputError, match="chunk tokens must be between 16 and 8192, not -5"):
        create_collection(index, embedders, "bad", spec, chunk_tokens=-5)
    with pytest.raises(InputError, match="overlap sentences must be between 0 and 20, not 21"):
        create_collection(index, embedders, "bad", spec, overlap_sentences=21)
    assert index.catalog.list_collections() == []


def test_a_data_directory_that_cannot_be_created_is_a_storage_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")

    result = Cli(blocker / "data")("status")

    assert result.exit_code == 7
    assert result.stderr.startswith(f"error: cannot create the directory {blocker / 'data'}: ")


def test_a_malformed_setting_names_its_variable(cli: Cli) -> None:
    result = cli("status", env={"RAGSEARCH_PORT": "abc"})

    assert result.exit_code == 2
    assert result.stderr.startswith("error: RAGSEARCH_PORT='abc': Input should be a valid integer")


def test_serve_refuses_a_port_out_of_range(cli: Cli) -> None:
    result = cli("serve", "--port", "99999")

    assert result.exit_code == 2
    assert "--port" in result.stderr
