"""Lexical search for the PostgreSQL + Milvus stack: PostgreSQL tsvector vs Milvus BM25 (issue 12).

Three engines over the same pre-tokenised text (`indexer.lexical.index_text` for chunks,
`query_tokens` for queries: jieba words + character bigrams for Chinese, identifiers whole):

- `postgres`: our `PostgresLexicalIndex` itself (Snowball stems via `ts_lexize`, tsvector +
  GIN, `ts_rank` with normalisation 1), in a database of its own (`--pg-url`). The table is
  created without the catalog's foreign key to `chunks`, so no catalog rows are needed; the
  SQL that adds and searches is the class's own.
- `milvus`: a Milvus collection with a VarChar field analysed by Milvus, a BM25 Function into a
  SPARSE_FLOAT_VECTOR field and a SPARSE_INVERTED_INDEX (metric BM25). Milvus Lite has no
  `whitespace` tokenizer and no stemmer filter (only `standard` = regex `\\w+` + lowercase, and
  `jieba`), so each token is stemmed here with the same Snowball analyzer tantivy uses and
  written so that `\\w+` keeps it whole (`_` doubled, `-` -> `_h`, `.` -> `_d`): Milvus then
  sees exactly tantivy's terms. The query is the same transform of `query_tokens`.
- `tantivy`: `indexer.lexical_tantivy.TantivyLexicon`, the reference (BM25, k1 1.2, b 0.75).

Quality: nDCG@10 and recall@10 on SciFact (300 test queries, title + text per document) and
CMRC 2018 dev (first `--zh-queries` queries). Speed: `--size` synthetic chunks (SciFact
sentence runs + 5% CMRC passages, `scripts/bench_scale.py`'s `dataset()`), insert rate, then
top-100 latency (p50/p95) of the 300 SciFact test queries, one at a time, and CPU time
(this process, which hosts Milvus Lite and tantivy, plus the PostgreSQL backend) per query
and per inserted row: on a busy machine the CPU figures are the comparable ones.

    createdb -h 127.0.0.1 -U postgres stack_bench
    OMP_NUM_THREADS=1 nice -n 10 python scripts/bench_lexical_stack.py \\
        --pg-url postgresql+psycopg://postgres@127.0.0.1:5432/stack_bench --work /tmp/stack/lex
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import measure_lexical  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from indexer.lexical import index_text, query_tokens  # noqa: E402
from indexer.lexical_store import PostgresLexicalIndex  # noqa: E402
from indexer.lexical_tantivy import SyncState, TantivyLexicon, _analyzer  # noqa: E402

DATASETS = Path("/work/shared/datasets")
K = 10
TOP = 100
BATCH = 1_000

Search = Callable[[str, int], list[int]]


# --- data --------------------------------------------------------------------------------


def load(
    folder: Path, qrels_name: str, limit: int | None
) -> tuple[list[str], list[str], dict[str, str], dict[str, dict[str, int]]]:
    """(doc ids, doc texts, queries by id, qrels) of a BEIR-style folder."""
    corpus, queries, qrels = measure_lexical.load(folder, qrels_name, limit)
    return list(corpus), list(corpus.values()), queries, qrels


def quality(
    search: Search, doc_ids: list[str], queries: dict[str, str], qrels: dict[str, dict[str, int]]
) -> tuple[float, float]:
    ndcg = recall = 0.0
    for qid, qtext in queries.items():
        hits = [doc_ids[row] for row in search(qtext, K)]
        rel = qrels[qid]
        dcg = sum(rel.get(d, 0) / math.log2(i + 2) for i, d in enumerate(hits))
        ideal = sorted(rel.values(), reverse=True)[:K]
        ndcg += dcg / sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
        recall += len(set(hits) & set(rel)) / len(rel)
    return round(ndcg / len(queries), 4), round(recall / len(queries), 4)


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 2)


# --- engines -----------------------------------------------------------------------------
# Each engine indexes rows 0..n-1 (ids = row numbers) of pre-tokenised texts.


class Postgres:
    name = "postgres"

    def __init__(self, url: str, collection_id: int) -> None:
        # One pooled connection: one server backend, whose CPU time `server_cpu` reads.
        self.engine = create_engine(url, future=True, pool_size=1, max_overflow=0)
        self.collection_id = collection_id
        self.index = PostgresLexicalIndex()
        with self.engine.begin() as conn:
            self.backend = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
            # indexer.lexical_store.chunk_lexical, minus the foreign key to the catalog.
            conn.execute(
                text(
                    "CREATE TABLE IF NOT EXISTS chunk_lexical (chunk_id BIGINT PRIMARY KEY, "
                    "collection_id BIGINT NOT NULL, tsv TSVECTOR NOT NULL)"
                )
            )
            conn.execute(
                text(
                    "CREATE INDEX IF NOT EXISTS ix_chunk_lexical_tsv "
                    "ON chunk_lexical USING gin (tsv)"
                )
            )
            conn.execute(
                text(
                    "CREATE INDEX IF NOT EXISTS ix_chunk_lexical_collection "
                    "ON chunk_lexical (collection_id)"
                )
            )
            conn.execute(
                text("DELETE FROM chunk_lexical WHERE collection_id = :c"), {"c": collection_id}
            )
        self.offset = collection_id * 10_000_000  # chunk ids are global in the shared table

    def server_cpu(self) -> float:
        """CPU seconds of this engine's PostgreSQL backend (same machine: /proc)."""
        fields = Path(f"/proc/{self.backend}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def add(self, terms: list[str]) -> None:
        for start in range(0, len(terms), BATCH):
            rows = [
                (self.offset + start + i, t) for i, t in enumerate(terms[start : start + BATCH])
            ]
            with self.engine.begin() as conn:
                self.index.add(conn, self.collection_id, rows)

    def finish(self) -> None:
        with self.engine.begin() as conn:
            conn.execute(text("ANALYZE chunk_lexical"))

    def search(self, query: str, limit: int) -> list[int]:
        with self.engine.connect() as conn:
            hits = self.index.search(conn, self.collection_id, query, limit)
        return [chunk_id - self.offset for chunk_id, _ in hits]

    def close(self) -> None:
        self.engine.dispose()


_STEM = _analyzer()


def milvus_terms(tokens: Sequence[str]) -> str:
    """Tokens stemmed as tantivy stems them, written so Milvus' `\\w+` keeps each one whole."""
    out = []
    for token in tokens:
        for term in _STEM.analyze(token):
            out.append(term.replace("_", "__").replace("-", "_h").replace(".", "_d"))
    return " ".join(out)


class Milvus:
    name = "milvus"

    def __init__(self, uri: str, collection: str, k1: float, b: float) -> None:
        from pymilvus import DataType, Function, FunctionType, MilvusClient

        self.client = MilvusClient(uri)
        self.collection = collection
        if self.client.has_collection(collection):
            self.client.drop_collection(collection)
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field(
            "terms",
            DataType.VARCHAR,
            max_length=65_535,
            enable_analyzer=True,
            analyzer_params={"tokenizer": "standard"},
        )
        schema.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(
            Function(
                name="bm25",
                function_type=FunctionType.BM25,
                input_field_names=["terms"],
                output_field_names=["sparse"],
            )
        )
        index = self.client.prepare_index_params()
        index.add_index(
            field_name="sparse",
            index_type="SPARSE_INVERTED_INDEX",
            metric_type="BM25",
            params={"bm25_k1": k1, "bm25_b": b},
        )
        self.client.create_collection(
            collection, schema=schema, index_params=index, consistency_level="Strong"
        )

    def add(self, terms: list[str]) -> None:
        for start in range(0, len(terms), BATCH):
            rows = [
                {"id": start + i, "terms": milvus_terms(t.split())[:65_000]}
                for i, t in enumerate(terms[start : start + BATCH])
            ]
            self.client.insert(self.collection, rows)

    def finish(self) -> None:
        self.client.flush(self.collection)
        self.client.load_collection(self.collection)

    def search(self, query: str, limit: int) -> list[int]:
        expression = milvus_terms(query_tokens(query))
        if not expression:
            return []
        result = self.client.search(
            self.collection,
            data=[expression],
            anns_field="sparse",
            limit=limit,
            output_fields=["id"],
            search_params={"metric_type": "BM25"},
        )
        return [int(hit["id"]) for hit in result[0]]

    def close(self) -> None:
        self.client.close()


class Tantivy:
    name = "tantivy"

    def __init__(self, path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)
        self.lexicon = TantivyLexicon(path)

    def add(self, terms: list[str]) -> None:
        for start in range(0, len(terms), BATCH):
            chunk = terms[start : start + BATCH]
            self.lexicon.add(list(range(start, start + len(chunk))), chunk)

    def finish(self) -> None:
        self.lexicon.commit(SyncState(0, 0))
        self.lexicon.release()

    def search(self, query: str, limit: int) -> list[int]:
        return [chunk_id for chunk_id, _ in self.lexicon.search(query, limit)]

    def close(self) -> None:
        self.lexicon.release()


# --- runs --------------------------------------------------------------------------------


def make(engine: str, args: argparse.Namespace, tag: str, number: int) -> Any:
    if engine == "postgres":
        return Postgres(args.pg_url, number)
    if engine == "milvus":
        return Milvus(str(args.work / "milvus.db"), f"bench_{tag}", args.k1, args.b)
    return Tantivy(args.work / f"tantivy_{tag}")


def run_quality(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    sets = [
        ("scifact", DATASETS / "scifact", "test.tsv", None),
        ("cmrc", DATASETS / "cmrc2018_zh", "dev.tsv", args.zh_queries),
    ]
    for number, (tag, folder, qrels_name, limit) in enumerate(sets, start=1):
        doc_ids, texts, queries, qrels = load(folder, qrels_name, limit)
        terms = [index_text(t) for t in texts]
        for engine_name in args.engines:
            engine = make(engine_name, args, tag, number)
            t0 = time.perf_counter()
            engine.add(terms)
            engine.finish()
            seconds = time.perf_counter() - t0
            ndcg, rec = quality(engine.search, doc_ids, queries, qrels)
            engine.close()
            out[f"{tag}/{engine_name}"] = {"ndcg@10": ndcg, "recall@10": rec}
            print(
                f"{tag:8} {engine_name:9} docs {len(texts):6} queries {len(queries):5} "
                f"nDCG@10 {ndcg:.4f}  recall@10 {rec:.4f}  (index {seconds:.1f}s)",
                flush=True,
            )
    return out


def cpu(engine: Any) -> float:
    """CPU seconds so far of this process (Milvus Lite and tantivy run inside it) plus, for
    PostgreSQL, its server backend: a cost that a busy machine does not inflate."""
    server = engine.server_cpu() if hasattr(engine, "server_cpu") else 0.0
    return time.process_time() + server


def run_speed(args: argparse.Namespace) -> dict[str, Any]:
    from bench_scale import base, dataset

    data = base(args.cache)
    texts, _ = dataset(args.size, data)
    queries = data["queries"][0]
    t0 = time.perf_counter()
    terms = [index_text(t) for t in texts]
    print(
        f"\n{args.size} synthetic chunks, tokenised in {time.perf_counter() - t0:.1f}s "
        f"(mean {statistics.mean(len(t.split()) for t in terms):.0f} tokens)",
        flush=True,
    )
    out: dict[str, Any] = {}
    for engine_name in args.engines:
        engine = make(engine_name, args, f"speed{args.size}", 9)
        c0, t0 = cpu(engine), time.perf_counter()
        engine.add(terms)
        engine.finish()
        total, total_cpu = time.perf_counter() - t0, cpu(engine) - c0
        t1 = time.perf_counter()
        engine.search(queries[0], TOP)  # Milvus Lite builds its segment indexes here
        first = (time.perf_counter() - t1) * 1000
        count = args.milvus_queries if engine_name == "milvus" else len(queries)
        latencies = []
        c1 = cpu(engine)
        for query in queries[:count]:
            t1 = time.perf_counter()
            engine.search(query, TOP)
            latencies.append((time.perf_counter() - t1) * 1000)
        query_cpu = cpu(engine) - c1
        engine.close()
        row = {
            "insert_rows_per_s": round(len(terms) / total),
            "insert_rows_per_cpu_s": round(len(terms) / total_cpu),
            "insert_s": round(total, 1),
            "first_query_ms": round(first, 1),
            "queries": len(latencies),
            "p50_ms": pct(latencies, 0.5),
            "p95_ms": pct(latencies, 0.95),
            "cpu_ms_per_query": round(query_cpu * 1000 / len(latencies), 2),
        }
        out[f"speed/{engine_name}"] = row
        print(f"{engine_name:9} {json.dumps(row)}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/stack_bench"
    )
    parser.add_argument("--work", type=Path, default=Path("/tmp/stack/lex"))
    parser.add_argument("--cache", type=Path, default=Path("/tmp/rs-scale-cache"))
    parser.add_argument("--engines", nargs="+", default=["postgres", "milvus", "tantivy"])
    parser.add_argument("--zh-queries", type=int, default=1000)
    parser.add_argument("--size", type=int, default=100_000, help="0: skip the speed run")
    parser.add_argument("--milvus-queries", type=int, default=300)
    parser.add_argument("--k1", type=float, default=1.2, help="Milvus BM25 k1 (server default)")
    parser.add_argument("--b", type=float, default=0.75)
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    if not args.skip_quality:
        results.update(run_quality(args))
    if args.size:
        results.update(run_speed(args))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
