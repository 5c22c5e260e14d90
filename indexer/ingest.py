"""The ingest orchestrator: hash → skip unchanged → parse → chunk → embed (cache first) → write.

One transaction per document. Vectors are cached as soon as they are computed, so a failure
later (a provider outage, a crash) never pays for the same embedding twice.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from indexer.chunking import chunk_document
from indexer.collections import check_embedder
from indexer.errors import (
    CatalogError,
    InputError,
    PayloadTooLarge,
    ProviderError,
    RagsearchError,
    StorageError,
)
from indexer.index import Index
from indexer.lexical import index_text
from indexer.parsers import media_type_for, parse_bytes
from indexer.progress import IngestProgress
from indexer.providers.base import Embedder, Vectors
from indexer.records import (
    ChunkDraft,
    Collection,
    FailedSource,
    IngestReport,
    NewChunk,
    NewDocument,
)

_GROUP_CHUNKS = 512  # chunks embedded together: big batches keep the model busy

ProgressCallback = Callable[[IngestProgress], None]


@dataclass(frozen=True, slots=True)
class SourceItem:
    """One thing to ingest: a file on disk, or bytes from an upload."""

    source: str  # unique within a collection: an absolute path or a caller-given name
    filename: str  # decides the parser, by suffix
    path: Path | None = None
    data: bytes | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    skip: str | None = None  # why it is reported and never read (see `discover`)


def source_for_path(path: Path) -> str:
    """How a file is named in the catalog: its absolute path."""
    return str(path.expanduser().resolve())


def discover(paths: Sequence[Path], *, follow_symlinks: bool = False) -> list[SourceItem]:
    """Files to ingest under `paths`: directories recursively, hidden entries skipped.

    An explicitly named file is always taken (an unsupported one fails alone later).
    Inside a directory, a file no parser reads, a symbolic link that leaves it, and
    anything that is not a regular file (a FIFO, a device) come back as items with a
    `skip` reason: reported as skipped, never read, never passed over in silence. With
    `follow_symlinks`, links may leave the directory (still only to regular files).
    """
    items: dict[str, SourceItem] = {}
    for raw in paths:
        path = raw.expanduser()
        if not path.exists():
            raise InputError(f"no such file or directory: {raw}")
        if not path.is_dir():
            source = source_for_path(path)
            items[source] = _file_item(path, path.name, path.resolve(), follow=True)
            continue
        root = path.resolve()
        for folder, name in _walk(root, follow_symlinks):
            unsupported = _unsupported(name)
            if unsupported is not None:
                source = source_for_path(folder / name)
                item = SourceItem(source, name, skip=unsupported)
            else:
                item = _file_item(folder / name, name, root, follow=follow_symlinks)
            items.setdefault(item.source, item)
    return list(items.values())


def _unsupported(filename: str) -> str | None:
    try:
        media_type_for(filename)
    except RagsearchError as exc:
        return exc.message
    return None


def _walk(root: Path, follow_symlinks: bool) -> Iterator[tuple[Path, str]]:
    """(folder, file name) under `root`, hidden entries skipped, each real folder once."""
    seen: set[Path] = set()
    for folder, dirs, files in os.walk(root, followlinks=follow_symlinks):
        real = Path(folder).resolve()
        if real in seen:  # a link loop, or two links to one folder
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(folder), name


def _file_item(path: Path, name: str, root: Path, *, follow: bool) -> SourceItem:
    """The item for `path`, or a skipped one: a link leaving `root`, or not a regular file."""
    target = path.resolve()
    if path.is_symlink() and not follow and not target.is_relative_to(root):
        source = str(path.absolute())
        reason = f"symbolic link to {target} leaves {root}; skipped (--follow-symlinks allows it)"
        return SourceItem(source, name, skip=reason)
    source = source_for_path(path)
    try:
        kind = target.stat().st_mode
    except OSError as exc:
        return SourceItem(source, name, skip=f"cannot read: {exc.strerror or exc}; skipped")
    if not stat.S_ISREG(kind):
        return SourceItem(source, name, skip=f"not a regular file ({_kind(kind)}); skipped")
    return SourceItem(source, name, path=target)


def _kind(mode: int) -> str:
    for test, label in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a directory"),
    ):
        if test(mode):
            return label
    return "a special file"


def read_regular_file(path: Path, limit: int) -> bytes:
    """At most `limit` bytes of `path` (more is PayloadTooLarge), refusing anything that is
    not a regular file: opened without blocking, so a FIFO swapped in since `discover`
    cannot hang the ingest, and read with a bound, so a device cannot grow memory."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror or exc}") from exc
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise InputError(f"not a regular file ({_kind(mode)})")
        size = os.fstat(fd).st_size
        if size > limit:
            raise PayloadTooLarge(f"file is {size:,} bytes; the limit is {limit:,}")
        try:
            return handle.read(limit + 1)
        except OSError as exc:
            raise InputError(f"cannot read file: {exc.strerror or exc}") from exc


@dataclass(slots=True)
class _Prepared:
    item: SourceItem
    sha256: str
    size: int
    title: str | None
    media_type: str
    metadata: dict[str, Any]
    drafts: list[ChunkDraft]
    embed_shas: list[str]
    is_update: bool

    def document(self) -> NewDocument:
        return NewDocument(
            source=self.item.source,
            title=self.title,
            media_type=self.media_type,
            content_sha256=self.sha256,
            metadata=self.metadata,
            size_bytes=self.size,
        )

    def new_chunks(self) -> list[NewChunk]:
        return [
            NewChunk(draft=d, embed_sha256=s, lexical_text=index_text(d.embed_text))
            for d, s in zip(self.drafts, self.embed_shas, strict=True)
        ]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class Ingestor:
    """Writes items into one collection. The caller holds the writer lock."""

    def __init__(
        self,
        index: Index,
        collection: Collection,
        embedder: Embedder,
        *,
        on_progress: ProgressCallback | None = None,
    ) -> None:
        check_embedder(collection, embedder)
        self.index = index
        self.catalog = index.catalog
        self.collection = collection
        self.embedder = embedder
        self.settings = index.settings
        self.on_progress = on_progress
        self.store = index.store(collection)  # loads and reconciles the vector file
        index.lexicon(collection)  # a writer's tantivy index catches up before writing
        self.report = IngestReport(collection=collection.name)
        self._pending: list[_Prepared] = []
        self._pending_chunks = 0
        self._changes = 0  # vectors added or removed since the index last heard of them
        self._files_total: int | None = None
        self._files_done = 0
        self._chunks_found = 0
        self._chunks_done = 0

    async def run(
        self, items: Iterable[SourceItem], *, sync_scope: Sequence[Path] | None = None
    ) -> IngestReport:
        """Ingest `items`; with `sync_scope`, delete documents under it that were not seen."""
        started = time.perf_counter()
        existing = self.catalog.document_hashes(self.collection.id)
        seen: set[str] = set()
        self._files_total = len(items) if isinstance(items, Sized) else None
        try:
            for item in items:
                self._files_done += 1
                if item.skip is not None:
                    self.report.skipped.append(FailedSource(item.source, item.skip))
                    continue
                seen.add(item.source)
                # Parsing and writing run in a worker thread: a server ingesting an upload
                # keeps answering other requests meanwhile.
                await asyncio.to_thread(self._prepare, item, existing.get(item.source))
                self._progress()
                if self._pending_chunks >= _GROUP_CHUNKS:
                    await self._flush()
            await self._flush()
            if sync_scope is not None:
                self._delete_vanished(existing, seen, sync_scope)
        except StorageError as exc:
            # The disk filled (or failed): what was committed stays; the report says where
            # the run stopped, and the caller still gets it beside the error.
            self.report.error = exc.message
            raise
        finally:
            try:
                self._mark_current()  # saves the vectors when enough changed
            except StorageError as exc:
                self.report.error = self.report.error or exc.message
                raise
            finally:
                self.index.finish_writing(self.collection)
                self.report.seconds = time.perf_counter() - started
        self.catalog.checkpoint()  # committed documents reach the database file now
        return self.report

    def _progress(self) -> None:
        if self.on_progress is not None:
            self.on_progress(
                IngestProgress(
                    files_done=self._files_done,
                    files_total=self._files_total,
                    chunks_found=self._chunks_found,
                    chunks_done=self._chunks_done,
                )
            )

    # --- stages --------------------------------------------------------------------------

    def _fail(self, source: str, error: BaseException | str, prefix: str = "") -> None:
        message = error.message if isinstance(error, RagsearchError) else str(error)
        provider = isinstance(error, ProviderError)
        self.report.failed.append(FailedSource(source, prefix + message, provider))

    def _read(self, item: SourceItem) -> bytes:
        limit = self.settings.max_file_bytes
        if item.data is not None:
            data = item.data
        else:
            assert item.path is not None
            data = read_regular_file(item.path, limit)
        if len(data) > limit:
            raise PayloadTooLarge(f"file is {len(data):,} bytes; the limit is {limit:,}")
        return data

    def _prepare(self, item: SourceItem, prior: tuple[int, str] | None) -> None:
        try:
            data = self._read(item)
            sha = hashlib.sha256(data).hexdigest()
            if prior is not None and prior[1] == sha:
                self.report.unchanged += 1  # skipped before parsing: costs nothing
                return
            parsed = parse_bytes(
                data, item.filename, max_pages=self.settings.max_pages_per_document
            )
            drafts = chunk_document(
                parsed,
                max_tokens=self.collection.chunk_tokens,
                overlap_sentences=self.collection.overlap_sentences,
                count_tokens=self.embedder.count_tokens,
                additive=True,  # the Embedder contract: counts are sub-additive
                max_chunks=self.settings.max_chunks_per_document,
            )
            if not drafts:
                raise InputError("no text to index")
        except RagsearchError as exc:
            self._fail(item.source, exc)
            return
        except Exception as exc:  # a parser bug must not sink the other files
            self._fail(item.source, f"unexpected {type(exc).__name__}: {exc}")
            return
        self._pending_chunks += len(drafts)
        self._chunks_found += len(drafts)
        self._pending.append(
            _Prepared(
                item=item,
                sha256=sha,
                size=len(data),
                title=parsed.title or Path(item.filename).stem,
                media_type=parsed.media_type,
                metadata={**parsed.metadata, **item.metadata},
                drafts=drafts,
                embed_shas=[_sha(d.embed_text) for d in drafts],
                is_update=prior is not None,
            )
        )

    async def _flush(self) -> None:
        pending, self._pending, self._pending_chunks = self._pending, [], 0
        if not pending:
            return
        vectors, errors = await self._embed(pending)
        ready: list[_Prepared] = []
        for prepared in pending:
            failed = next((errors[s] for s in prepared.embed_shas if s in errors), None)
            if failed is not None:
                self._fail(prepared.item.source, failed, "embedding failed: ")
            else:
                ready.append(prepared)
        if ready:
            await asyncio.to_thread(self._write, ready, vectors)
        # Failed documents are done too: the bar counts work finished, not work that landed.
        self._chunks_done += sum(len(p.drafts) for p in pending)
        self._progress()
        self._mark_current()

    def _mark_current(self) -> None:
        """Tell the index what this run changed; it saves the vectors when enough did."""
        changes, self._changes = self._changes, 0
        self.index.mark_current(self.collection, self.store, changes)

    async def _embed(
        self, pending: Sequence[_Prepared]
    ) -> tuple[dict[str, Vectors], dict[str, RagsearchError]]:
        """Vectors for every chunk, cache first. Returns (sha -> vector, sha -> error)."""
        texts: dict[str, str] = {}
        for prepared in pending:
            for sha, draft in zip(prepared.embed_shas, prepared.drafts, strict=True):
                texts.setdefault(sha, draft.embed_text)
        model_key = self.collection.cache_model_key
        dims = self.collection.dimensions
        vectors = self.catalog.cached_vectors(model_key, dims, list(texts))
        total_chunks = sum(len(p.drafts) for p in pending)
        # Batches of similar length: a batch is padded to its longest text, so sorting first
        # saves the model work (as sentence-transformers' own encode does).
        missing = sorted((sha for sha in texts if sha not in vectors), key=lambda s: len(texts[s]))
        batch = max(1, self.embedder.max_batch_inputs)
        batches = [missing[i : i + batch] for i in range(0, len(missing), batch)]
        results = await asyncio.gather(
            *(self.embedder.embed_documents([texts[s] for s in b]) for b in batches),
            return_exceptions=True,
        )
        computed: dict[str, Vectors] = {}
        errors: dict[str, RagsearchError] = {}
        for shas, result in zip(batches, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, RagsearchError):
                    raise result
                errors.update(dict.fromkeys(shas, result))
                continue
            self.report.tokens += result.usage.prompt_tokens
            self.report.cost_cny += result.usage.cost_cny
            computed.update(zip(shas, result.vectors, strict=True))
        self.catalog.put_vectors(model_key, dims, computed)
        vectors.update(computed)
        self.report.embedded += len(computed)
        self.report.reused += (
            total_chunks
            - len(computed)
            - sum(1 for p in pending for s in p.embed_shas if s in errors)
        )
        return vectors, errors

    def _write(self, ready: list[_Prepared], vectors: dict[str, Vectors]) -> None:
        """Write a group of documents in one transaction; if that fails, one by one, so a
        document the catalog refuses fails alone."""
        batch = [(p.document(), p.new_chunks()) for p in ready]
        try:
            results = self.catalog.write_documents(self.collection, batch)
            written = list(zip(ready, batch, strict=True))
        except CatalogError:
            results, written = [], []
            for prepared, item in zip(ready, batch, strict=True):
                try:
                    results += self.catalog.write_documents(self.collection, [item])
                    written.append((prepared, item))
                except CatalogError as exc:
                    self._fail(prepared.item.source, exc)
        removed = [i for written_doc in results for i in written_doc.removed_ids]
        self._changes += self.store.remove(np.asarray(removed, dtype=np.int64))
        chunk_ids = [i for written_doc in results for i in written_doc.chunk_ids]
        self._changes += len(chunk_ids)
        if chunk_ids:
            stacked = np.stack([vectors[s] for p, _ in written for s in p.embed_shas])
            self.store.add(np.asarray(chunk_ids, dtype=np.int64), stacked)
        texts = [c.lexical_text for _, (_, new_chunks) in written for c in new_chunks]
        self.index.write_lexical(self.collection, chunk_ids, texts, removed)
        self.report.chunks += len(chunk_ids)
        self.report.updated += sum(1 for p, _ in written if p.is_update)
        self.report.added += sum(1 for p, _ in written if not p.is_update)

    def _delete_vanished(
        self, existing: dict[str, tuple[int, str]], seen: set[str], scope: Sequence[Path]
    ) -> None:
        roots = [source_for_path(p) for p in scope]
        for source, (document_id, _) in existing.items():
            if source in seen:
                continue
            if any(
                source == root or source.startswith(root.rstrip(os.sep) + os.sep) for root in roots
            ):
                self.delete_document(document_id)

    def delete_document(self, document_id: int) -> None:
        removed = self.catalog.delete_document(self.collection.id, document_id)
        self._changes += self.store.remove(np.asarray(removed, dtype=np.int64))
        self.index.write_lexical(self.collection, [], [], removed)
        self.report.deleted += 1


def delete_documents(index: Index, collection: Collection, document_ids: Sequence[int]) -> None:
    """Delete documents with their chunks, text and vectors. The caller holds the writer lock."""
    store = index.store(collection)
    changes = 0
    try:
        for document_id in document_ids:
            removed = index.catalog.delete_document(collection.id, document_id)
            changes += store.remove(np.asarray(removed, dtype=np.int64))
            index.write_lexical(collection, [], [], removed)
    finally:
        index.mark_current(collection, store, changes)
        index.finish_writing(collection)
