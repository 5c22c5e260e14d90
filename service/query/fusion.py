"""Reciprocal rank fusion of ranked lists, and the per-language weights that feed it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

_CJK_RANGES = (
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0x3040, 0x30FF),
    (0xAC00, 0xD7AF),
)


@dataclass(slots=True)
class Candidate:
    """A chunk seen by at least one retriever, with each retriever's score and rank."""

    chunk_id: int
    fused: float = 0.0
    scores: dict[str, float] = field(default_factory=dict)
    ranks: dict[str, int] = field(default_factory=dict)


def rrf(
    ranked: Mapping[str, Sequence[tuple[int, float]]],
    weights: Mapping[str, float],
    k: int = 60,
    limit: int | None = None,
) -> list[Candidate]:
    """Fuse ranked lists by weighted reciprocal rank: sum of w / (k + rank), rank from 1.

    Ties keep the order of the first list that saw the chunk, so fusion is deterministic.
    `limit` keeps the best that many: only they become `Candidate`s (on the query path
    fusion runs per request over ~200 chunks, of which ~15 are kept).
    """
    fused: dict[int, float] = {}
    for name, hits in ranked.items():
        weight = weights.get(name, 1.0)
        for rank, (chunk_id, _score) in enumerate(hits, start=1):
            share = weight / (k + rank) if weight > 0 else 0.0
            fused[chunk_id] = fused.get(chunk_id, 0.0) + share
    return _candidates(ranked, fused, limit)


def _candidates(
    ranked: Mapping[str, Sequence[tuple[int, float]]],
    fused: dict[int, float],
    limit: int | None,
) -> list[Candidate]:
    """The best `limit` chunks of `fused` (all when None) with each list's score and rank.

    `sorted(..., reverse=True)` is stable: equal scores keep `fused`'s insertion order.
    """
    best = sorted(fused, key=fused.__getitem__, reverse=True)
    if limit is not None:
        best = best[:limit]
    kept = {chunk_id: Candidate(chunk_id, fused[chunk_id]) for chunk_id in best}
    for name, hits in ranked.items():
        for rank, (chunk_id, score) in enumerate(hits, start=1):
            cand = kept.get(chunk_id)
            if cand is not None and name not in cand.ranks:
                cand.scores[name] = score
                cand.ranks[name] = rank
    return list(kept.values())


def zscore(
    ranked: Mapping[str, Sequence[tuple[int, float]]],
    weights: Mapping[str, float],
    limit: int | None = None,
) -> list[Candidate]:
    """Fuse by weighted sum of per-list z-scores of the retrievers' own relevance scores.

    Unlike RRF it keeps how far apart scores are, not only their order: on SciFact it beats
    RRF by ~0.02 nDCG@10 (BENCHMARKS.md). A chunk one retriever did not return gets that
    list's lowest z-score, not zero, so one strong signal is not erased by a missing one.
    """
    floors: dict[str, float] = {}
    normalised: dict[str, dict[int, float]] = {}
    for name, hits in ranked.items():
        if not hits:
            continue
        values = [score for _, score in hits]
        mean = sum(values) / len(values)
        spread = (sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5 or 1.0
        normalised[name] = {chunk_id: (score - mean) / spread for chunk_id, score in hits}
        floors[name] = min(normalised[name].values())
    # Every chunk once, in the order the lists first saw it.
    seen = dict.fromkeys(chunk_id for z in normalised.values() for chunk_id in z)
    fused = {
        chunk_id: sum(
            weights.get(name, 1.0) * z.get(chunk_id, floors[name]) for name, z in normalised.items()
        )
        for chunk_id in seen
    }
    return _candidates(ranked, fused, limit)


def cjk_ratio(text: str) -> float:
    """Share of letters in `text` that are Chinese, Japanese or Korean."""
    if text.isascii():
        return 0.0
    letters = [ch for ch in text if ch.isalpha()]
    if not letters:
        return 0.0
    cjk = sum(1 for ch in letters if any(lo <= ord(ch) <= hi for lo, hi in _CJK_RANGES))
    return cjk / len(letters)


def embedder_covers(provider: str, model: str, text: str) -> bool:
    """Whether the embedder's vectors mean anything for `text`'s language.

    all-MiniLM-L6-v2 was trained on English only: on Chinese its vectors are near noise
    (measured in BENCHMARKS.md), so hybrid search leans on the lexical side there.
    Zhipu Embedding-3 and the local multilingual-e5-small (`-int8`) are multilingual: a
    collection created with either keeps its dense side for Chinese queries.
    """
    english_only = provider == "local" and "minilm" in model.lower() and "multilingual" not in model
    return not (english_only and cjk_ratio(text) >= 0.3)
