"""Crash safety: SQLite is the truth, the FAISS file is derived and repaired from it.

The SIGKILL test runs `ragsearch ingest` as a real subprocess and kills it at several points of
its run, chosen by watching the catalog (no timing guesses), then re-runs the ingest and checks
that the index is consistent and matches a clean ingest of the same files.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from indexer.index import Index
from indexer.settings import Settings
from tests.conftest import Cli

CORPUS_FILES = 300
CHUNK_TOKENS = "48"  # small chunks: three per corpus file, so ingest flushes more than once
WORDS = [
    "alpha", "beta", "gamma", "delta", "index", "vector", "search", "chunk", "parse", "embed",
    "store", "query", "answer", "cite", "source", "document", "paragraph", "sentence", "token",
]  # fmt: skip


def write_corpus(folder: Path) -> None:
    """CORPUS_FILES small text files of three paragraphs each, the same on every run."""
    rng = random.Random(9087)
    folder.mkdir()
    for i in range(CORPUS_FILES):
        paragraphs = [
            " ".join(
                " ".join(rng.choice(WORDS) for _ in range(8)).capitalize() + f" item{i}p{p}s{s}."
                for s in range(3)
            )
            for p in range(3)
        ]
        (folder / f"f{i:03d}.txt").write_text("\n\n".join(paragraphs))


def query(data_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    """Run read-only SQL on a data directory's catalog."""
    with closing(sqlite3.connect(data_dir / "catalog.sqlite3", timeout=10)) as conn:
        return conn.execute(sql).fetchall()


def document_count(data_dir: Path) -> int:
    """Committed documents, as another process sees them; 0 while the catalog is busy."""
    try:
        return int(query(data_dir, "SELECT count(*) FROM documents")[0][0])
    except sqlite3.OperationalError:
        return 0


def committed_chunks(data_dir: Path) -> dict[str, list[int]]:
    """source -> its chunk ids in ordinal order."""
    rows = query(
        data_dir,
        "SELECT d.source, c.id FROM documents d JOIN chunks c ON c.document_id = d.id "
        "ORDER BY d.source, c.ordinal",
    )
    out: dict[str, list[int]] = {}
    for source, chunk_id in rows:
        out.setdefault(str(source), []).append(int(chunk_id))
    return out


def chunk_texts_by_name(data_dir: Path) -> dict[str, list[str]]:
    """file name -> its chunk texts in ordinal order."""
    rows = query(
        data_dir,
        "SELECT d.source, c.text FROM documents d JOIN chunks c ON c.document_id = d.id "
        "ORDER BY d.source, c.ordinal",
    )
    out: dict[str, list[str]] = {}
    for source, text in rows:
        out.setdefault(Path(str(source)).name, []).append(str(text))
    return out


def assert_catalog_sound(data_dir: Path) -> None:
    """No duplicate chunk per (document, ordinal), ordinals dense, chunk_count right, FTS full."""
    duplicates = query(
        data_dir,
        "SELECT document_id, ordinal FROM chunks GROUP BY document_id, ordinal HAVING count(*) > 1",
    )
    assert duplicates == []
    wrong_counts = query(
        data_dir,
        "SELECT d.id FROM documents d LEFT JOIN chunks c ON c.document_id = d.id "
        "GROUP BY d.id HAVING d.chunk_count != count(c.id) "
        "OR (count(c.id) > 0 AND max(c.ordinal) != count(c.id) - 1)",
    )
    assert wrong_counts == []
    fts_tables = query(data_dir, "SELECT name FROM sqlite_master WHERE sql LIKE 'CREATE VIRTUAL%'")
    fts_rows = sum(int(query(data_dir, f"SELECT count(*) FROM {t[0]}")[0][0]) for t in fts_tables)
    assert fts_rows == int(query(data_dir, "SELECT count(*) FROM chunks")[0][0])


def start_ingest(data_dir: Path, corpus: Path) -> subprocess.Popen[bytes]:
    """`ragsearch ingest` in a child process with a clean environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGSEARCH_")}
    env.pop("ZHIPUAI_API_KEY", None)
    argv = [sys.executable, "-c", "from indexer.cli import run; run()"]
    argv += ["--data-dir", str(data_dir), "ingest", str(corpus), "-c", "crash", "-q", "--json"]
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


Trigger = Callable[[Path, int], bool]

# When to kill, by what the child has done so far: from "just took the lock" (before any
# write) through mid-batch commits to "every document committed" (around the final save).
KILL_POINTS: dict[str, Trigger] = {
    # The lock file holds "PID OPERATION".
    "lock-taken": lambda d, pid: (d / "ingest.lock").read_bytes().split()[:1] == [b"%d" % pid],
    "first-document": lambda d, _: document_count(d) >= 1,
    "a-third": lambda d, _: document_count(d) >= CORPUS_FILES // 3,
    "two-thirds": lambda d, _: document_count(d) >= 2 * CORPUS_FILES // 3,
    "all-documents": lambda d, _: document_count(d) >= CORPUS_FILES,
}


def kill_when(children: dict[str, tuple[Path, subprocess.Popen[bytes]]]) -> dict[str, bool]:
    """SIGKILL each child once its kill point is reached; returns which died by our hand."""
    killed: dict[str, bool] = {}
    deadline = time.monotonic() + 60
    while len(killed) < len(children):
        assert time.monotonic() < deadline, f"children never reached {set(children) - set(killed)}"
        for label, (data_dir, proc) in children.items():
            if label in killed:
                continue
            if proc.poll() is not None:
                killed[label] = False  # finished before its kill point was seen
            elif KILL_POINTS[label](data_dir, proc.pid):
                os.kill(proc.pid, signal.SIGKILL)
                killed[label] = proc.wait() == -signal.SIGKILL
        time.sleep(0.002)  # polling interval, not a timing assumption
    return killed


@pytest.mark.slow  # kills real ingest processes at several points
def test_ingest_killed_at_any_moment_recovers_on_rerun(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    write_corpus(corpus)
    reference = Cli(tmp_path / "reference")
    reference.create_collection("crash", "--chunk-tokens", CHUNK_TOKENS)
    assert reference.json("ingest", corpus, "-c", "crash")["added"] == CORPUS_FILES
    expected = chunk_texts_by_name(reference.data_dir)

    children: dict[str, tuple[Path, subprocess.Popen[bytes]]] = {}
    for label in KILL_POINTS:
        data_dir = tmp_path / f"data-{label}"
        Cli(data_dir).create_collection("crash", "--chunk-tokens", CHUNK_TOKENS)
        children[label] = (data_dir, start_ingest(data_dir, corpus))
    stderr: dict[str, str] = {}
    try:
        killed = kill_when(children)
    finally:
        for label, (_, proc) in children.items():
            if proc.poll() is None:
                proc.kill()
            _, err = proc.communicate()
            stderr[label] = err.decode(errors="replace")
    # The last point may race with the child's normal exit; the others are mid-run.
    assert all(killed[label] for label in list(KILL_POINTS)[:-1]), (killed, stderr)

    for label, (data_dir, _) in children.items():
        before = committed_chunks(data_dir)
        assert_catalog_sound(data_dir)  # straight after the kill, before any repair

        cli = Cli(data_dir)
        report = cli.json("ingest", corpus, "-c", "crash")

        assert report["failed"] == [], label
        assert report["unchanged"] == len(before), label
        assert report["added"] == CORPUS_FILES - len(before), label
        status = cli.json("status")["collections"]
        assert len(status) == 1
        assert status[0]["consistent"] is True, label
        assert status[0]["documents"] == CORPUS_FILES, label
        assert status[0]["chunks"] == status[0]["vectors"], label
        assert_catalog_sound(data_dir)
        after = committed_chunks(data_dir)
        # Nothing committed before the kill was lost or rewritten.
        assert {s: after[s] for s in before} == before, label
        assert chunk_texts_by_name(data_dir) == expected, label


def faiss_file(settings: Settings) -> Path:
    (path,) = settings.vectors_dir.glob("*.faiss")
    return path


@pytest.mark.parametrize("damage", ["deleted", "truncated", "garbage"])
def test_ingest_rebuilds_damaged_faiss_file_from_cache(
    damage: str, cli: Cli, docs: Path, settings: Settings, index: Index
) -> None:
    cli.create_collection()
    cli.json("ingest", docs, "-c", "docs")
    path = faiss_file(settings)
    if damage == "deleted":
        path.unlink()
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    else:
        path.write_bytes(b"not a faiss index " * 20)
    assert cli.json("status")["collections"][0]["consistent"] is False

    report = cli.json("ingest", docs, "-c", "docs")

    assert (report["embedded"], report["unchanged"]) == (0, 3)
    status = cli.json("status")["collections"][0]
    assert status["consistent"] is True
    assert status["vectors"] == status["chunks"] == 5
    collection = index.catalog.get_collection("docs")
    store = index.store(collection)
    found, vectors, missing = index.catalog.chunk_vectors(collection, store.ids().tolist())
    assert missing == []
    for chunk_id, vector in zip(found, vectors, strict=True):
        assert store.search(vector, 1)[0][0] == chunk_id  # each vector is back under its id


def test_stale_faiss_file_after_crash_never_serves_deleted_chunks(
    cli: Cli, docs: Path, settings: Settings, index: Index
) -> None:
    cli.create_collection()
    cli.json("ingest", docs, "-c", "docs")
    collection = index.catalog.get_collection("docs")
    first_ids, first_vectors, _ = index.catalog.chunk_vectors(
        collection, index.catalog.chunk_ids(collection.id).tolist()
    )
    path = faiss_file(settings)
    old_file = path.read_bytes()
    # Second run: one file changes (its first chunk is replaced), one vanishes.
    guide = docs / "guide.md"
    guide.write_text(guide.read_text().replace("Install the service", "Deploy the service"))
    (docs / "notes.txt").unlink()
    report = cli.json("ingest", docs, "-c", "docs", "--sync")
    assert (report["updated"], report["deleted"]) == (1, 1)
    # A crash after the catalog commit but before the vector file was saved leaves this:
    path.write_bytes(old_file)
    assert cli.json("status")["collections"][0]["consistent"] is False

    reader = Index(settings, writer=False)
    try:
        live = set(reader.catalog.chunk_ids(collection.id).tolist())
        gone = set(first_ids) - live
        assert len(gone) == 4  # guide.md's three chunks (replaced) and notes.txt's one
        store = reader.store(collection)
        assert set(store.ids().tolist()) == live
        for vector in first_vectors:  # query with every old vector, deleted ones included
            hits = store.search(vector, 10)
            assert hits
            assert {chunk_id for chunk_id, _ in hits} <= live
    finally:
        reader.close()
    # A reader repairs only its own copy; the next writer repairs the file.
    assert cli.json("status")["collections"][0]["consistent"] is False
    index.store(collection)
    assert cli.json("status")["collections"][0]["consistent"] is True
