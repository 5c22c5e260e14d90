"""Hostile files in an ingest directory: links out of it, FIFOs, devices. Reported, never read."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import Cli


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A secret file outside the ingest directory."""
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("root:x:0:0 hostilesecretword\n")
    return secret


def ingest(cli: Cli, *args: str | Path) -> dict[str, object]:
    result = cli("ingest", *args, "-c", "docs", "--json")
    assert result.exit_code == 0, result.stderr
    report: dict[str, object] = json.loads(result.stdout)
    return report


def search_hits(cli: Cli, word: str) -> list[str]:
    import service.cli  # noqa: F401 - adds `search`

    return [
        r["source"] for r in cli.json("search", word, "-c", "docs", "--mode", "lexical")["results"]
    ]


def test_a_link_leaving_the_directory_is_skipped_and_reported(
    cli: Cli, docs: Path, outside: Path
) -> None:
    (docs / "passwd.txt").symlink_to(outside)
    cli.create_collection()

    report = ingest(cli, docs)

    assert report["added"] == 3
    [skipped] = report["skipped"]  # type: ignore[misc]
    assert skipped["source"] == str(docs / "passwd.txt")
    assert "leaves" in skipped["error"] and "--follow-symlinks" in skipped["error"]
    assert search_hits(cli, "hostilesecretword") == []


def test_follow_symlinks_takes_the_link_explicitly(cli: Cli, docs: Path, outside: Path) -> None:
    (docs / "passwd.txt").symlink_to(outside)
    cli.create_collection()

    report = ingest(cli, docs, "--follow-symlinks")

    assert report["added"] == 4 and report["skipped"] == []
    assert search_hits(cli, "hostilesecretword") == [str(outside)]


def test_a_link_inside_the_directory_is_followed(cli: Cli, docs: Path) -> None:
    (docs / "alias.md").symlink_to(docs / "guide.md")
    cli.create_collection()
    report = ingest(cli, docs)
    assert report["added"] == 3 and report["skipped"] == []


def test_a_directory_link_loop_ends(cli: Cli, docs: Path) -> None:
    (docs / "loop").symlink_to(docs, target_is_directory=True)
    cli.create_collection()
    assert ingest(cli, docs, "--follow-symlinks")["added"] == 3


def test_a_fifo_is_skipped_instead_of_hanging_the_ingest(cli: Cli, docs: Path) -> None:
    os.mkfifo(docs / "p.txt")
    cli.create_collection()

    report = ingest(cli, docs)
    named = cli("ingest", docs / "p.txt", "-c", "docs", "--json")

    assert report["added"] == 3
    assert [s["error"] for s in report["skipped"]] == ["not a regular file (a FIFO); skipped"]  # type: ignore[attr-defined]
    assert named.exit_code == 0 and "FIFO" in named.stdout


def test_a_link_to_dev_zero_is_never_read(cli: Cli, docs: Path) -> None:
    (docs / "zero.txt").symlink_to("/dev/zero")
    cli.create_collection()

    inside_only = ingest(cli, docs)
    following = ingest(cli, docs, "--follow-symlinks")

    assert "leaves" in inside_only["skipped"][0]["error"]  # type: ignore[index]
    assert "character device" in following["skipped"][0]["error"]  # type: ignore[index]
