"""Measure lexical (FTS5 BM25) retrieval quality for the tokenisation choices in indexer.lexical.

Chinese: CMRC 2018 (first 500 dev queries), comparing jieba search-mode words, jieba words
plus character bigrams, and character unigrams plus bigrams. English: SciFact (300 test
queries), with and without the `porter` FTS5 wrapper and English query stopwords.
Documents are indexed whole (title + text as one field). Prints nDCG@10 and recall@10.

    python scripts/measure_lexical.py [--datasets /work/shared/datasets]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from indexer import lexical
from indexer.sentences import CJK_CHARS

BASE_TOKENIZE = "unicode61 remove_diacritics 2 tokenchars '-._'"
_CJK_RUN = re.compile(f"[{CJK_CHARS}]+")

Tokenizer = Callable[[str], list[str]]


Qrels = dict[str, dict[str, int]]


def load(
    folder: Path, qrels_name: str, limit: int | None
) -> tuple[dict[str, str], dict[str, str], Qrels]:
    corpus = {}
    with (folder / "corpus.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            corpus[row["_id"]] = f"{row.get('title') or ''}\n{row['text']}"
    qrels: dict[str, dict[str, int]] = {}
    with (folder / "qrels" / qrels_name).open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            if int(row["score"]) > 0:
                qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    queries = {}
    with (folder / "queries.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if row["_id"] in qrels:
                queries[row["_id"]] = row["text"]
    ids = list(queries)[:limit] if limit else list(queries)
    return corpus, {q: queries[q] for q in ids}, qrels


def _bigrams(text: str, unigrams: bool) -> list[str]:
    out: list[str] = []
    for run in _CJK_RUN.findall(text):
        if unigrams:
            out.extend(run)
        out.extend(run[i : i + 2] for i in range(len(run) - 1))
    return out


def _non_cjk(tokens: Iterable[str]) -> list[str]:
    return [t for t in tokens if not _CJK_RUN.search(t)]


def evaluate(
    corpus: dict[str, str],
    queries: dict[str, str],
    qrels: dict[str, dict[str, int]],
    index_tokens: Callable[[str], str],
    query_tokens: Tokenizer,
    tokenize: str,
    k: int = 10,
) -> tuple[float, float, float]:
    """(nDCG@k, recall@k, seconds to index) for one configuration."""
    db = sqlite3.connect(":memory:")
    db.execute(f'CREATE VIRTUAL TABLE t USING fts5(terms, tokenize="{tokenize}")')
    ids = list(corpus)
    t0 = time.perf_counter()
    db.executemany(
        "INSERT INTO t(rowid, terms) VALUES (?, ?)",
        ((i, index_tokens(corpus[doc])) for i, doc in enumerate(ids)),
    )
    seconds = time.perf_counter() - t0
    ndcg = recall = 0.0
    for qid, qtext in queries.items():
        expr = lexical.fts_match_expression(query_tokens(qtext))
        hits: list[str] = []
        if expr:
            rows = db.execute(
                "SELECT rowid FROM t WHERE t MATCH ? ORDER BY bm25(t) LIMIT ?", (expr, k)
            ).fetchall()
            hits = [ids[r[0]] for r in rows]
        rel = qrels[qid]
        dcg = sum(rel.get(d, 0) / math.log2(i + 2) for i, d in enumerate(hits))
        ideal = sorted(rel.values(), reverse=True)[:k]
        idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
        ndcg += dcg / idcg
        recall += len(set(hits) & set(rel)) / len(rel)
    db.close()
    return ndcg / len(queries), recall / len(queries), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=Path("/work/shared/datasets"))
    parser.add_argument("--zh-queries", type=int, default=500, help="0 for all 3,219")
    args = parser.parse_args()

    def jieba_only(text: str) -> str:
        return " ".join(lexical._tokens(text, query=False, bigrams=False))

    def jieba_only_q(text: str) -> list[str]:
        words = dict.fromkeys(lexical._tokens(text, query=True, bigrams=False))
        return [t for t in words if t not in lexical._STOPWORDS]

    def uni_bi(text: str) -> str:
        return " ".join(_non_cjk(lexical.index_text(text).split()) + _bigrams(text, True))

    def uni_bi_q(text: str) -> list[str]:
        return list(dict.fromkeys(_non_cjk(lexical.query_tokens(text)) + _bigrams(text, True)))

    def no_stopwords_q(text: str) -> list[str]:
        return list(dict.fromkeys(lexical.index_text(text).split()))

    def whole_only_q(text: str) -> list[str]:
        # As query_tokens, but stopwords kept.
        return list(dict.fromkeys(lexical._tokens(text, query=True)))

    def ids_whole_q(text: str) -> list[str]:
        # As query_tokens, but hyphenated words whole only (the PPR-9087 rule for all).
        words = lexical._TOKEN.finditer(text.lower())
        return [t for t in dict.fromkeys(m.group() for m in words) if t not in lexical._STOPWORDS]

    def jieba_uni_bi(text: str) -> str:
        return lexical.index_text(text) + " " + " ".join(c for c in text if _CJK_RUN.match(c))

    def jieba_uni_bi_q(text: str) -> list[str]:
        chars = [c for c in text if _CJK_RUN.match(c)]
        return list(dict.fromkeys(lexical.query_tokens(text) + chars))

    print(f"chosen FTS5_TOKENIZE = {lexical.FTS5_TOKENIZE!r}")
    corpus, queries, qrels = load(args.datasets / "cmrc2018_zh", "dev.tsv", args.zh_queries)
    print(f"\ncmrc2018_zh: {len(corpus)} docs, {len(queries)} queries")
    zh: list[tuple[str, Callable[[str], str], Tokenizer]] = [
        ("(a) jieba search-mode words", jieba_only, jieba_only_q),
        ("(b) jieba + bigrams (chosen)", lexical.index_text, lexical.query_tokens),
        ("(c) char unigrams + bigrams", uni_bi, uni_bi_q),
        ("(d) jieba + bigrams + unigrams", jieba_uni_bi, jieba_uni_bi_q),
    ]
    for name, idx, qry in zh:
        for tok in (lexical.FTS5_TOKENIZE,):  # porter leaves CJK alone: same numbers
            n, r, s = evaluate(corpus, queries, qrels, idx, qry, tok)
            print(f"  {name:30} {tok!r:58} nDCG@10 {n:.4f}  recall@10 {r:.4f}  index {s:.1f}s")

    corpus, queries, qrels = load(args.datasets / "scifact", "test.tsv", None)
    print(f"\nscifact: {len(corpus)} docs, {len(queries)} queries")
    en: list[tuple[str, Tokenizer]] = [
        ("query_tokens (stopwords out)", lexical.query_tokens),
        ("stopwords kept", whole_only_q),
        ("hyphenated words whole only", ids_whole_q),
        ("stopwords kept, all in parts", no_stopwords_q),
    ]
    for name, qry in en:
        for tok in (BASE_TOKENIZE, lexical.FTS5_TOKENIZE):
            n, r, s = evaluate(corpus, queries, qrels, lexical.index_text, qry, tok)
            print(f"  {name:30} {tok!r:58} nDCG@10 {n:.4f}  recall@10 {r:.4f}  index {s:.1f}s")


if __name__ == "__main__":
    main()
