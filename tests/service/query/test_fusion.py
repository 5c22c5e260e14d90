"""Fusion of ranked lists and the per-language choice of retrievers."""

from __future__ import annotations

import random
from typing import Any

import pytest

from service.query.fusion import cjk_ratio, embedder_covers, rrf, zscore


def test_rrf_rewards_agreement_between_lists() -> None:
    fused = rrf({"dense": [(1, 0.9), (2, 0.8), (3, 0.7)], "lexical": [(3, 12.0), (4, 9.0)]}, {})
    assert fused[0].chunk_id == 3  # second and first: beats either list's top
    assert fused[0].ranks == {"dense": 3, "lexical": 1}
    assert fused[0].fused == pytest.approx(1 / 63 + 1 / 61)


def test_rrf_weight_zero_ignores_a_list_but_keeps_its_scores() -> None:
    fused = rrf({"dense": [(1, 0.9)], "lexical": [(2, 5.0)]}, {"dense": 0.0})
    assert [c.chunk_id for c in fused] == [2, 1]
    assert fused[1].scores == {"dense": 0.9}


def test_zscore_keeps_score_gaps_that_rrf_loses() -> None:
    # Dense is nearly tied; lexical has one clear winner. Rank fusion cannot see the gap.
    lists = {
        "dense": [(1, 0.81), (2, 0.80), (3, 0.79)],
        "lexical": [(2, 30.0), (1, 5.0), (3, 4.0)],
    }
    assert rrf(lists, {})[0].chunk_id in (1, 2)
    assert zscore(lists, {})[0].chunk_id == 2


def test_zscore_gives_a_missing_chunk_the_lists_floor_not_zero() -> None:
    fused = zscore({"dense": [(1, 0.9), (2, 0.1)], "lexical": [(3, 10.0), (1, 9.0), (4, 0.0)]}, {})
    by_id = {c.chunk_id: c for c in fused}
    assert set(by_id) == {1, 2, 3, 4}
    assert by_id[1].fused > by_id[3].fused  # strong in one list, present in the other
    assert "lexical" not in by_id[2].scores


def test_zscore_of_one_list_keeps_its_order() -> None:
    hits = [(5, 3.0), (6, 2.0), (7, 1.0)]
    assert [c.chunk_id for c in zscore({"lexical": hits}, {})] == [5, 6, 7]
    assert zscore({"lexical": [], "dense": []}, {}) == []


def test_cjk_ratio_and_embedder_coverage() -> None:
    assert cjk_ratio("年假需要提前多久申请") == 1.0
    assert cjk_ratio("FastAPI 安装") == pytest.approx(2 / 9)
    assert not embedder_covers("local", "all-MiniLM-L6-v2", "年假需要提前多久申请")
    assert embedder_covers("local", "all-MiniLM-L6-v2", "how do I request leave")
    assert embedder_covers("zhipu", "embedding-3", "年假需要提前多久申请")
    assert embedder_covers("local", "multilingual-e5-small-int8", "年假需要提前多久申请")
    assert embedder_covers("local", "multilingual-e5-small", "年假需要提前多久申请")


@pytest.mark.parametrize("fuse", [rrf, zscore])
def test_fusion_with_a_limit_is_the_head_of_the_full_ranking(fuse: Any) -> None:
    rng = random.Random(7)
    for _ in range(200):
        # Few distinct ids and scores: overlaps between lists and ties in the fused score.
        lists = {
            name: [(rng.randrange(30), float(rng.randrange(4))) for _ in range(rng.randrange(12))]
            for name in ("dense", "lexical")
        }
        lists = {name: list(dict(hits).items()) for name, hits in lists.items()}  # unique ids
        weights = {"dense": rng.choice([0.0, 0.5, 1.0]), "lexical": 1.0}
        full = fuse(lists, weights)
        limit = rng.randrange(1, 15)
        head = fuse(lists, weights, limit=limit)
        as_tuples = [(c.chunk_id, c.fused, c.scores, c.ranks) for c in full[:limit]]
        assert [(c.chunk_id, c.fused, c.scores, c.ranks) for c in head] == as_tuples
        seen = {cid for hits in lists.values() for cid, _ in hits}
        assert sorted(c.chunk_id for c in full) == sorted(seen)


def test_rrf_ties_keep_the_order_of_the_first_list_that_saw_them() -> None:
    fused = rrf({"dense": [(5, 0.9), (6, 0.8)], "lexical": [(6, 3.0), (5, 2.0)]}, {}, limit=2)
    assert [c.chunk_id for c in fused] == [5, 6]  # equal sums: dense saw 5 first
