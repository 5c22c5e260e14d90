"""Benchmark ingest throughput by stage, with Chroma as the peer for writing vectors.

Part 1, the FastAPI docs (en + zh Markdown): read+parse, chunk (MiniLM token counter, budget
= the embedder's input limit), embed on a sample of files (--embed-chunks; MiniLM on 2 cores is
slow): raw sentence-transformers vs our embedder batched as the Ingestor does, and a real
`Ingestor.run` on a fresh data directory minus a cached re-run of the same files. Then
"everything but embedding": `Ingestor.run` of all files into a new collection whose every
vector is already in the embedding cache (placeholder unit vectors for the files not embedded:
what is written costs the same whatever the values), so only parse, chunk and write run.

Part 2, SciFact (5,183 abstracts, one chunk each, MiniLM vectors computed once and cached in
a .npy under /tmp): writing precomputed vectors with their text into Chroma (PersistentClient,
cosine), by hand into FAISS flat + SQLite + FTS5, and through ours (`Ingestor.run` with every
vector in the embedding cache, and the bare `Catalog.write_documents` + `FaissStore.add` path).

Prints a table (or JSON with --json). Not a test; numbers depend on the machine.

    python scripts/bench_ingest.py [--quick] [--json] [--corpus DIR] [--scifact FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import resource
import sqlite3
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")  # chromadb: no network calls

import faiss
import numpy as np

from indexer.catalog import CollectionSpec, NewDocument
from indexer.chunking import chunk_document
from indexer.index import Index
from indexer.ingest import Ingestor, SourceItem, discover
from indexer.lexical import FTS5_TOKENIZE, index_text
from indexer.parsers import parse_bytes
from indexer.providers.local import SentenceTransformerEmbedder
from indexer.records import ChunkDraft, Collection, NewChunk
from indexer.settings import Settings

DATASETS = Path("/work/shared/datasets")
BATCH = 64  # the Ingestor's embed batch (Settings.embed_batch_size) and the raw encode batch
GROUP = 512  # chunks the Ingestor gathers before embedding (ingest._GROUP_CHUNKS)
CHROMA_BATCH = 1000
WHOLE_DOC_BUDGET = 1_000_000  # SciFact: one chunk per abstract, as the peers store it


@dataclass
class Row:
    stage: str
    items: int
    unit: str
    seconds: float
    note: str = ""
    compare: str = ""  # ratio vs peer or target, filled in by the caller

    @property
    def rate(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else float("inf")


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        log(f"  {row.stage}: {row.items} {row.unit} in {row.seconds:.2f} s = {row.rate:,.0f}/s")
        return row


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def maxrss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()  # the cache key, as in ingest._sha


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def minilm_collection(
    index: Index, embedder: SentenceTransformerEmbedder, name: str, chunk_tokens: int, overlap: int
) -> Collection:
    return index.catalog.create_collection(
        CollectionSpec(
            name=name,
            embedder_provider=embedder.provider,
            embedder_model=embedder.model,
            dimensions=embedder.dimensions,
            chunk_tokens=chunk_tokens,
            overlap_sentences=overlap,
        )
    )


def ingest(
    index: Index, collection: Collection, embedder: Any, items: Sequence[SourceItem]
) -> tuple[Any, float]:
    """One timed `Ingestor.run` (the Ingestor is built, and its store loaded, before timing)."""
    ingestor = Ingestor(index, collection, embedder)
    report, seconds = timed(lambda: asyncio.run(ingestor.run(items)))
    if report.failed:
        log(f"  warning: {len(report.failed)} failed, e.g. {report.failed[0]}")
    return report, seconds


# --- part 1: stages over the FastAPI docs -----------------------------------------------


def fastapi_items(corpus: Path, limit: int | None) -> list[SourceItem]:
    roots = [corpus / lang for lang in ("en", "zh") if (corpus / lang).is_dir()] or [corpus]
    items = discover(roots)
    return items[:limit] if limit else items


def parse_and_chunk(
    items: Sequence[SourceItem],
    embedder: SentenceTransformerEmbedder,
    budget: int,
    overlap: int,
    res: Results,
) -> list[list[ChunkDraft]]:
    def parse_all() -> list[Any]:
        return [
            parse_bytes(i.path.read_bytes() if i.path else i.data or b"", i.filename) for i in items
        ]

    parsed, seconds = timed(parse_all)
    size = sum(len(p.text) for p in parsed)
    res.add(Row("read + parse", len(items), "docs", seconds, f"{size / 1e6:.2f} M chars"))

    def chunk_all() -> list[list[ChunkDraft]]:
        return [
            chunk_document(
                p, max_tokens=budget, overlap_sentences=overlap, count_tokens=embedder.count_tokens
            )
            for p in parsed
        ]

    drafts, seconds = timed(chunk_all)
    n = sum(len(d) for d in drafts)
    res.add(Row("chunk (MiniLM token counts)", n, "chunks", seconds, f"budget {budget} tokens"))
    texts = [c.embed_text for doc in drafts for c in doc]
    _, seconds = timed(lambda: [index_text(t) for t in texts])
    res.add(Row("  of write: lexical tokens (index_text)", n, "chunks", seconds))
    _, seconds = timed(lambda: [sha(t) for t in texts])
    res.add(Row("  of prepare: sha256 cache keys", n, "chunks", seconds))
    return drafts


def embed_raw(model: Any, texts: list[str]) -> np.ndarray:
    return model.encode(
        texts,
        batch_size=BATCH,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )


def embed_like_ingestor(embedder: SentenceTransformerEmbedder, groups: list[list[str]]) -> None:
    """As `Ingestor._embed`: per group, batches of `embedder.max_batch_inputs` (a local model
    takes the whole length-sorted group in one call and batches it internally)."""

    async def run() -> None:
        size = embedder.max_batch_inputs
        for group in groups:
            texts = sorted(group, key=len)
            batches = [texts[i : i + size] for i in range(0, len(texts), size)]
            await asyncio.gather(*(embedder.embed_documents(b) for b in batches))

    asyncio.run(run())


def ingestor_groups(drafts: list[list[ChunkDraft]]) -> list[list[str]]:
    """Unique embed texts grouped as the Ingestor flushes them (>= 512 chunks, whole docs)."""
    groups: list[list[str]] = []
    seen: set[str] = set()
    pending: dict[str, str] = {}
    count = 0
    for doc in drafts:
        for c in doc:
            key = sha(c.embed_text)
            if key not in seen:
                seen.add(key)
                pending.setdefault(key, c.embed_text)
        count += len(doc)
        if count >= GROUP:
            groups.append(list(pending.values()))
            pending, count = {}, 0
    if pending:
        groups.append(list(pending.values()))
    return groups


def bench_embedding(
    model: Any,
    embedder: SentenceTransformerEmbedder,
    drafts: list[list[ChunkDraft]],
    repeats: int,
    res: Results,
) -> None:
    groups = ingestor_groups(drafts)
    texts = [t for g in groups for t in g]
    embed_raw(model, texts[:BATCH])  # warm-up: first calls allocate
    raw_times, ours_times, doc_order_times = [], [], []
    for _ in range(repeats):  # interleaved, best of: the machine is noisy
        raw_times.append(timed(lambda: embed_raw(model, texts))[1])
        ours_times.append(timed(lambda: embed_like_ingestor(embedder, groups))[1])
        doc_order_times.append(
            timed(
                lambda: [
                    embed_raw(model, texts[i : i + BATCH]) for i in range(0, len(texts), BATCH)
                ]
            )[1]
        )
    raw = res.add(
        Row(
            "embed: raw sentence-transformers",
            len(texts),
            "chunks",
            min(raw_times),
            "encode(all, batch_size=64): sorted by length across all texts",
        )
    )
    ours = res.add(
        Row(
            "embed: ours (embed_documents as Ingestor)",
            len(texts),
            "chunks",
            min(ours_times),
            "512-chunk groups, each sorted by length, batches of 64",
        )
    )
    ours.compare = f"{ours.rate / raw.rate:.2f}x raw (target >= 0.90)"
    diag = res.add(
        Row(
            "embed: raw, 64 per call in document order",
            len(texts),
            "chunks",
            min(doc_order_times),
            "diagnostic: same batches as ours, no wrapper",
        )
    )
    diag.compare = f"{diag.rate / raw.rate:.2f}x raw"
    res.facts["embed_seconds_all_runs"] = {
        "raw": raw_times,
        "ours": ours_times,
        "raw_doc_order": doc_order_times,
    }


def sample_docs(drafts: list[list[ChunkDraft]], chunks: int) -> list[int]:
    """Indices of documents, in order, holding at most `chunks` chunks (big files skipped)."""
    picked, total = [], 0
    for n, doc in enumerate(drafts):
        if total + len(doc) <= chunks:
            picked.append(n)
            total += len(doc)
    return picked


def placeholder_vectors(drafts: list[list[ChunkDraft]], dims: int) -> dict[str, np.ndarray]:
    """Unit vectors for the cache: what is written costs the same whatever the values."""
    rng = np.random.default_rng(0)
    out = {}
    for doc in drafts:
        for c in doc:
            v = rng.standard_normal(dims).astype(np.float32)
            out[sha(c.embed_text)] = v / np.linalg.norm(v)
    return out


def bench_fastapi(
    args: argparse.Namespace,
    model: Any,
    embedder: SentenceTransformerEmbedder,
    settings_for: Callable[[Path], Settings],
    res: Results,
) -> None:
    items = fastapi_items(args.corpus, 40 if args.quick else None)
    log(f"FastAPI docs: {len(items)} files from {args.corpus}")
    budget = embedder.max_input_tokens
    overlap = settings_for(Path(".")).chunk_overlap_sentences
    drafts = parse_and_chunk(items, embedder, budget, overlap, res)
    res.facts["maxrss_mib_after_parse_chunk"] = maxrss_mib()
    picked = sample_docs(drafts, 256 if args.quick else args.embed_chunks)
    sample, sample_drafts = [items[n] for n in picked], [drafts[n] for n in picked]
    res.facts["embed_sample"] = (
        f"{len(picked)} of {len(items)} files, {sum(map(len, sample_drafts))} chunks"
    )
    log(f"embedding sample: {res.facts['embed_sample']}")
    bench_embedding(model, embedder, sample_drafts, args.repeats, res)
    res.facts["maxrss_mib_after_embedding"] = maxrss_mib()

    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        index = Index(settings_for(Path(tmp)), writer=True)
        try:
            fresh = minilm_collection(index, embedder, "fresh", budget, overlap)
            report, full = ingest(index, fresh, embedder, sample)
            res.add(
                Row(
                    "Ingestor.run, fresh, sample (parse+chunk+embed+write)",
                    report.chunks,
                    "chunks",
                    full,
                    f"{report.added} docs, {report.embedded} embedded",
                )
            )
            again = minilm_collection(index, embedder, "again", budget, overlap)
            report2, rest = ingest(index, again, embedder, sample)
            res.add(
                Row(
                    "Ingestor.run, cached, sample",
                    report2.chunks,
                    "chunks",
                    rest,
                    f"{report2.reused} from cache",
                )
            )
            if report.embedded:
                emb = res.add(
                    Row(
                        "embed inside Ingestor.run (fresh - cached)",
                        report.embedded,
                        "chunks",
                        full - rest,
                    )
                )
                raw = next(r for r in res.rows if r.stage.startswith("embed: raw sentence"))
                emb.compare = f"{emb.rate / raw.rate:.2f}x raw (target >= 0.90)"
            index.catalog.put_vectors(
                fresh.cache_model_key,
                fresh.dimensions,
                placeholder_vectors(drafts, fresh.dimensions),
            )
            everything = minilm_collection(index, embedder, "cached", budget, overlap)
            report3, rest = ingest(index, everything, embedder, items)
            row = res.add(
                Row(
                    "Ingestor.run, all vectors cached (everything but embedding)",
                    report3.chunks,
                    "chunks",
                    rest,
                    f"all {report3.added} docs, {report3.reused} from cache",
                )
            )
            row.compare = f"{row.rate / 2000:.2f}x target (>= 2,000/s)"
            res.add(Row("  same run, in documents", report3.added, "docs", rest))
            res.facts["maxrss_mib_after_ingest"] = maxrss_mib()
            traced = minilm_collection(index, embedder, "traced", budget, overlap)
            tracemalloc.start()
            ingest(index, traced, embedder, items)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            res.facts["tracemalloc_peak_mib_cached_ingest"] = peak / 2**20
        finally:
            index.close()


# --- part 2: writing precomputed vectors, SciFact ---------------------------------------


@dataclass
class Corpus:
    items: list[SourceItem]
    drafts: list[ChunkDraft]  # one per item
    vectors: np.ndarray


def load_scifact(
    path: Path, limit: int | None, embedder: SentenceTransformerEmbedder, model: Any
) -> Corpus:
    items = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            text = f"{row.get('title') or ''}\n\n{row['text']}"
            items.append(
                SourceItem(f"scifact/{row['_id']}", f"{row['_id']}.txt", data=text.encode("utf-8"))
            )
            if limit and len(items) >= limit:
                break
    drafts = []
    for item in items:
        assert item.data is not None
        chunks = chunk_document(
            parse_bytes(item.data, item.filename),
            max_tokens=WHOLE_DOC_BUDGET,
            overlap_sentences=0,
            count_tokens=embedder.count_tokens,
        )
        assert len(chunks) == 1, f"{item.source} gave {len(chunks)} chunks"
        drafts.append(chunks[0])
    texts = [d.embed_text for d in drafts]
    digest = hashlib.sha256("\0".join(texts).encode()).hexdigest()[:16]
    cache = Path(tempfile.gettempdir()) / f"ragsearch-bench-scifact-minilm-{digest}.npy"
    if cache.exists():
        vectors = np.load(cache)
    else:
        log(f"embedding {len(texts)} SciFact abstracts with MiniLM (once; cached in {cache})")
        vectors = np.asarray(embed_raw(model, texts), dtype=np.float32)
        np.save(cache, vectors)
    return Corpus(items, drafts, vectors)


def write_chroma(corpus: Corpus, tmp: Path) -> float:
    import chromadb

    client = chromadb.PersistentClient(path=str(tmp / "chroma"))
    coll = client.create_collection("scifact", metadata={"hnsw:space": "cosine"})
    ids = [i.source for i in corpus.items]
    texts = [d.text for d in corpus.drafts]

    def add_all() -> None:
        for s in range(0, len(ids), CHROMA_BATCH):
            e = s + CHROMA_BATCH
            coll.add(ids=ids[s:e], embeddings=corpus.vectors[s:e], documents=texts[s:e])

    _, seconds = timed(add_all)
    assert coll.count() == len(ids)
    return seconds


def write_raw(corpus: Corpus, tmp: Path) -> float:
    """FAISS flat + SQLite + FTS5 by hand: the floor for what our write path does."""
    texts = [d.text for d in corpus.drafts]

    def run() -> None:
        db = sqlite3.connect(tmp / "raw.sqlite3")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("CREATE TABLE chunks (id INTEGER PRIMARY KEY, source TEXT, text TEXT)")
        db.execute(f'CREATE VIRTUAL TABLE fts USING fts5(terms, tokenize="{FTS5_TOKENIZE}")')
        rows = [
            (n + 1, i.source, t) for n, (i, t) in enumerate(zip(corpus.items, texts, strict=True))
        ]
        with db:
            db.executemany("INSERT INTO chunks VALUES (?, ?, ?)", rows)
            db.executemany(
                "INSERT INTO fts(rowid, terms) VALUES (?, ?)", [(r[0], r[2]) for r in rows]
            )
        db.close()
        store = faiss.IndexIDMap2(faiss.IndexFlatIP(corpus.vectors.shape[1]))
        store.add_with_ids(corpus.vectors, np.arange(1, len(rows) + 1, dtype=np.int64))
        faiss.write_index(store, str(tmp / "raw.faiss"))

    return timed(run)[1]


def write_ours_ingestor(
    corpus: Corpus, embedder: SentenceTransformerEmbedder, settings: Settings
) -> tuple[float, int]:
    """`Ingestor.run` with every vector already in the embedding cache (filled untimed)."""
    index = Index(settings, writer=True)
    try:
        coll = minilm_collection(index, embedder, "scifact", WHOLE_DOC_BUDGET, 0)
        cache = {sha(d.embed_text): v for d, v in zip(corpus.drafts, corpus.vectors, strict=True)}
        index.catalog.put_vectors(coll.cache_model_key, coll.dimensions, cache)
        report, seconds = ingest(index, coll, embedder, corpus.items)
        assert report.embedded == 0, "the cache was missed: vectors were recomputed"
        return seconds, report.chunks
    finally:
        index.close()


WRITE_GROUP = 512  # chunks per transaction, as the Ingestor's flush group


def write_ours_direct(
    corpus: Corpus, embedder: SentenceTransformerEmbedder, settings: Settings
) -> tuple[float, float]:
    """`Catalog.write_documents` + `FaissStore.add` per group of documents, then one save:
    the write path of `Ingestor._write` (groups of ~512 chunks, one transaction each).

    Returns (seconds with index_text, seconds of index_text alone).
    """
    index = Index(settings, writer=True)
    try:
        coll = minilm_collection(index, embedder, "direct", WHOLE_DOC_BUDGET, 0)
        store = index.store(coll)
        shas = [sha(d.embed_text) for d in corpus.drafts]
        rows = list(zip(corpus.items, corpus.drafts, shas, corpus.vectors, strict=True))

        def run() -> None:
            for start in range(0, len(rows), WRITE_GROUP):
                group = rows[start : start + WRITE_GROUP]
                batch = [
                    (
                        NewDocument(
                            item.source, None, "text/plain", key, {}, len(item.data or b"")
                        ),
                        [NewChunk(draft, key, index_text(draft.embed_text))],
                    )
                    for item, draft, key, _ in group
                ]
                written = index.catalog.write_documents(coll, batch)
                ids = [i for _, chunk_ids, _ in written for i in chunk_ids]
                store.add(np.asarray(ids, dtype=np.int64), np.stack([v for *_, v in group]))
            store.save()

        _, seconds = timed(run)
        _, lexical = timed(lambda: [index_text(d.embed_text) for d in corpus.drafts])
        return seconds, lexical
    finally:
        index.close()


def bench_scifact(
    args: argparse.Namespace,
    model: Any,
    embedder: SentenceTransformerEmbedder,
    settings_for: Callable[[Path], Settings],
    res: Results,
) -> None:
    corpus = load_scifact(args.scifact, 500 if args.quick else None, embedder, model)
    n = len(corpus.items)
    log(f"SciFact: {n} abstracts, vectors {corpus.vectors.shape}")
    with tempfile.TemporaryDirectory(prefix="bench-write-") as name:
        tmp = Path(name)
        chroma = res.add(
            Row(
                "write vectors+text: Chroma (peer)",
                n,
                "vectors",
                write_chroma(corpus, tmp),
                f"PersistentClient, cosine, add() x{CHROMA_BATCH}",
            )
        )
        raw = res.add(
            Row(
                "write vectors+text: raw FAISS flat + SQLite + FTS5",
                n,
                "vectors",
                write_raw(corpus, tmp),
                "sqlite3 executemany, one transaction",
            )
        )
        raw.compare = f"{raw.rate / chroma.rate:.1f}x Chroma"
        seconds, chunks = write_ours_ingestor(corpus, embedder, settings_for(tmp / "ours"))
        ours = res.add(
            Row(
                "write vectors+text: ours, Ingestor.run (cache hits)",
                chunks,
                "vectors",
                seconds,
                "parse + chunk + cache lookup + write, 1 txn per ~512 chunks",
            )
        )
        ours.compare = (
            f"{ours.rate / chroma.rate:.2f}x Chroma (target >= 10x), "
            f"{ours.rate / raw.rate:.2f}x raw"
        )
        seconds, lexical = write_ours_direct(corpus, embedder, settings_for(tmp / "direct"))
        direct = res.add(
            Row(
                "write vectors+text: ours, write_documents + FaissStore.add",
                n,
                "vectors",
                seconds,
                f"includes index_text ({lexical:.2f} s of it)",
            )
        )
        direct.compare = (
            f"{direct.rate / chroma.rate:.2f}x Chroma (target >= 10x), "
            f"{direct.rate / raw.rate:.2f}x raw"
        )
    res.facts["maxrss_mib_after_scifact"] = maxrss_mib()


# --- main ---------------------------------------------------------------------------------


def print_table(res: Results) -> None:
    print(f"{'stage':<62} {'items':>6} {'seconds':>8} {'items/s':>9}  compare / note")
    for r in res.rows:
        extra = "; ".join(x for x in (r.compare, r.note) if x)
        print(f"{r.stage:<62} {r.items:>6} {r.seconds:>8.2f} {r.rate:>9,.0f}  {extra}")
    for key, value in res.facts.items():
        if isinstance(value, float):
            print(f"{key}: {value:,.1f}")
        elif not isinstance(value, dict):
            print(f"{key}: {value}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--corpus",
        type=Path,
        default=DATASETS / "fastapi_docs_en_zh",
        help="FastAPI docs directory (its en/ and zh/ are ingested)",
    )
    parser.add_argument("--scifact", type=Path, default=DATASETS / "scifact" / "corpus.jsonl")
    parser.add_argument(
        "--quick", action="store_true", help="40 files and 500 abstracts: a smoke run"
    )
    parser.add_argument("--json", action="store_true", help="print results as JSON")
    parser.add_argument("--repeats", type=int, default=1, help="embedding passes (best of)")
    parser.add_argument(
        "--embed-chunks",
        type=int,
        default=768,
        help="chunks (whole FastAPI files, big ones skipped) for the embedding comparison",
    )
    parser.add_argument("--skip", choices=("fastapi", "scifact"), help="leave one part out")
    args = parser.parse_args(argv)

    from sentence_transformers import SentenceTransformer

    res = Results()
    res.facts.update(cpus=os.cpu_count(), torch_threads=__import__("torch").get_num_threads())
    embedder = SentenceTransformerEmbedder()
    model = SentenceTransformer(_model_path(), device="cpu")  # a separate, raw instance
    res.facts["maxrss_mib_after_model_load"] = maxrss_mib()

    def settings_for(data_dir: Path) -> Settings:
        return Settings(data_dir=data_dir, zhipu_api_key=None)

    if args.skip != "fastapi":
        bench_fastapi(args, model, embedder, settings_for, res)
    if args.skip != "scifact":
        bench_scifact(args, model, embedder, settings_for, res)
    res.facts["maxrss_mib_peak"] = maxrss_mib()
    if args.json:
        print(
            json.dumps(
                {"rows": [{**r.__dict__, "rate": r.rate} for r in res.rows], "facts": res.facts},
                indent=2,
            )
        )
    else:
        print_table(res)
    return 0


def _model_path() -> str:
    from indexer.providers.local import MINILM, _minilm_path

    return _minilm_path(MINILM)


if __name__ == "__main__":
    raise SystemExit(main())
