"""A tantivy full-text index per collection: BM25 with top-k pruning (block-max WAND).

SQLite FTS5 scores every row matching any term of an OR query, so its latency grows with the
collection (~300 ms p50 at 300K chunks); tantivy skips blocks that cannot reach the top k.
It indexes the same pre-tokenised text as FTS5 (`indexer.lexical`: jieba words and bigrams,
identifiers whole and in parts) split on whitespace, then lowercased, folded to ASCII where a
letter has a plain form and stemmed (Snowball English; CJK and identifiers pass unchanged),
which mirrors FTS5's `porter unicode61 remove_diacritics 2` on our tokens.

Derived data, like the FAISS file: one directory per collection, rebuilt from the catalog
when missing or unreadable. Only the writer (holding the data directory's writer lock) opens
an `IndexWriter`, and only while it writes; readers reopen the searcher when the catalog's
revision moves. A tantivy commit is atomic (new segments, then a new meta.json).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tantivy

from indexer.errors import storage_error
from indexer.lexical import query_tokens

IdArray = np.ndarray[Any, np.dtype[np.int64]]

_ANALYZER = "ragsearch"
_WRITER_HEAP = 128 * 1024 * 1024
_STATE_FILE = "ragsearch-state.json"
log = logging.getLogger("ragsearch.lexical")


@contextmanager
def _writes(path: Path) -> Iterator[None]:
    """tantivy reports a failed write (a full disk, say) as ValueError: one StorageError."""
    try:
        yield
    except (ValueError, OSError) as exc:
        raise storage_error(exc, f"cannot write the lexical index {path.name}") from exc


@dataclass(frozen=True, slots=True)
class SyncState:
    """How far the index has caught up with the catalog (see `indexer.chunk_changes`)."""

    high_id: int
    tombstone: int


def _schema() -> Any:
    builder = tantivy.SchemaBuilder()
    builder.add_unsigned_field("id", stored=False, indexed=True, fast=True)
    builder.add_text_field("terms", stored=False, tokenizer_name=_ANALYZER)
    return builder.build()


def _analyzer() -> Any:
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace())
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.ascii_fold())
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )


class TantivyLexicon:
    """The full-text index of one collection. Search is thread-safe; writes are the writer's."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._analyzer = _analyzer()
        self._lock = threading.Lock()
        self._writer: Any = None
        self._index = self._open()
        self._searcher = self._index.searcher()
        self._seen = self._state_stamp()
        self._known_state: tuple[tuple[int, int], SyncState] | None = None

    def _open(self) -> Any:
        self.path.mkdir(parents=True, exist_ok=True)
        schema = _schema()
        try:
            index = tantivy.Index(schema, path=str(self.path), reuse=True)
        except (OSError, ValueError):
            # Torn or foreign files: the catalog rebuilds the index (state back to zero).
            shutil.rmtree(self.path, ignore_errors=True)
            self.path.mkdir(parents=True)
            index = tantivy.Index(schema, path=str(self.path), reuse=True)
        index.register_tokenizer(_ANALYZER, self._analyzer)
        return index

    # --- state ---------------------------------------------------------------------------

    def state(self) -> SyncState:
        """The catalog position the last commit reached (zero when unknown)."""
        # Every search asks: the file is read again only when it was replaced (a commit
        # replaces it, so its inode and mtime change), which one stat tells.
        stamp = self._state_stamp()
        known = self._known_state
        if stamp is not None and known is not None and known[0] == stamp:
            return known[1]
        try:
            raw = json.loads((self.path / _STATE_FILE).read_text())
            state = SyncState(int(raw["high_id"]), int(raw["tombstone"]))
        except (OSError, ValueError, KeyError, TypeError):
            return SyncState(0, 0)
        if stamp is not None:
            self._known_state = (stamp, state)
        return state

    def _write_state(self, state: SyncState) -> None:
        target = self.path / _STATE_FILE
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"high_id": state.high_id, "tombstone": state.tombstone}))
        os.replace(tmp, target)

    def _state_stamp(self) -> tuple[int, int] | None:
        try:
            stat = (self.path / _STATE_FILE).stat()
        except OSError:
            return None
        return (stat.st_ino, stat.st_mtime_ns)

    def refresh(self) -> None:
        """Reopen the searcher if a writer (of any process) committed since: the state file
        is replaced after every commit, so one `stat` per query tells."""
        stamp = self._state_stamp()
        if stamp != self._seen:
            self.reload()
            self._seen = stamp

    def num_docs(self) -> int:
        return int(self._searcher.num_docs)

    # --- writing -------------------------------------------------------------------------

    def _writing(self) -> Any:
        if self._writer is None:
            with _writes(self.path):
                self._writer = self._index.writer(heap_size=_WRITER_HEAP, num_threads=1)
        return self._writer

    def add(self, ids: Sequence[int], texts: Sequence[str], *, replace: bool = False) -> None:
        """Index pre-tokenised texts under chunk ids. `replace` first drops any document
        with the same id (for replaying changes a crashed writer may have committed)."""
        writer = self._writing()
        if replace:
            self.remove(ids)
        with _writes(self.path):
            for chunk_id, text in zip(ids, texts, strict=True):
                doc = tantivy.Document()
                doc.add_unsigned("id", int(chunk_id))
                doc.add_text("terms", text)
                writer.add_document(doc)

    def remove(self, ids: Sequence[int]) -> None:
        if len(ids) == 0:
            return
        # By query: a term on an unsigned field given a Python int deletes nothing.
        schema = self._index.schema
        with _writes(self.path):
            self._writing().delete_documents_by_query(
                tantivy.Query.term_set_query(schema, "id", [int(i) for i in ids])
            )

    def clear(self) -> None:
        self._writing().delete_all_documents()

    def commit(self, state: SyncState) -> None:
        """Make the writes durable and visible and record `state` (the writer stays open)."""
        with _writes(self.path):
            if self._writer is not None:
                self._writer.commit()
            self._write_state(state)
        self.reload()
        self._seen = self._state_stamp()

    def release(self) -> None:
        """Drop uncommitted writes, finish merges and free the directory's writer lock, so
        the next writer (maybe another process) can open one."""
        writer, self._writer = self._writer, None
        if writer is None:
            return
        try:
            writer.rollback()
            writer.wait_merging_threads()  # consumes the writer
        except ValueError as exc:  # derived data: the next writer catches up from the catalog
            log.warning("lexical index %s: %s", self.path.name, exc)

    def reload(self) -> None:
        """See the latest commit (of this process or another)."""
        self._index.reload()
        with self._lock:
            self._searcher = self._index.searcher()

    def delete_files(self) -> None:
        self.release()
        shutil.rmtree(self.path, ignore_errors=True)

    # --- search --------------------------------------------------------------------------

    def search(
        self, query: str, limit: int, allowed: IdArray | None = None
    ) -> list[tuple[int, float]]:
        """Top (chunk id, BM25 score) for `query`; `allowed` restricts to those ids."""
        terms = {term for word in query_tokens(query) for term in self._analyzer.analyze(word)}
        if not terms or limit <= 0 or (allowed is not None and len(allowed) == 0):
            return []
        schema = self._index.schema
        text_query = tantivy.Query.boolean_query(
            [
                (tantivy.Occur.Should, tantivy.Query.term_query(schema, "terms", term))
                for term in sorted(terms)
            ]
        )
        if allowed is not None:
            restrict = tantivy.Query.term_set_query(schema, "id", [int(i) for i in allowed])
            text_query = tantivy.Query.boolean_query(
                [(tantivy.Occur.Must, text_query), (tantivy.Occur.Must, restrict)]
            )
        with self._lock:
            searcher = self._searcher
        result = searcher.search(text_query, limit, count=False)
        addresses = [address for _, address in result.hits]
        ids = searcher.fast_field_values("id", addresses)
        return [
            (int(chunk_id), float(score))
            for (score, _), chunk_id in zip(result.hits, ids, strict=True)
        ]
