"""The embedded default model (MiniLM on ONNX Runtime), loaded for real from the bundled package."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import numpy as np
import pytest

from indexer.providers.local import HashingEmbedder
from indexer.providers.onnx_local import MINILM_INT8, OnnxEmbedder, QueryPriority
from indexer.providers.query_cache import QueryVectorCache
from indexer.providers.zhipu import estimate_tokens

pytestmark = pytest.mark.slow  # loads the real MiniLM model


@pytest.fixture(scope="module")
def minilm(tmp_path_factory: pytest.TempPathFactory) -> OnnxEmbedder:
    return OnnxEmbedder(cache_dir=tmp_path_factory.mktemp("onnx"))


def test_minilm_counts_tokens_beyond_its_truncation_limit(minilm: OnnxEmbedder) -> None:
    long_text = "word " * 1000
    assert minilm.max_input_tokens == 254
    assert minilm.count_tokens(long_text) == 1000
    embedded = asyncio.run(minilm.embed_documents([long_text, "short text"]))
    # Encoding truncates to the model's limit; counting (for chunk budgets) must not.
    assert minilm.count_tokens(long_text) == 1000
    assert embedded.vectors.shape == (2, 384)
    assert np.allclose(np.linalg.norm(embedded.vectors, axis=1), 1.0, atol=1e-5)


def test_minilm_places_similar_texts_closer(minilm: OnnxEmbedder) -> None:
    vectors = asyncio.run(
        minilm.embed_documents(
            ["The cat sat on the mat.", "A kitten is sitting on a rug.", "Quarterly tax filing."]
        )
    ).vectors
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2


def test_minilm_returns_vectors_in_input_order_across_sub_batches(minilm: OnnxEmbedder) -> None:
    texts = [f"{'long ' * (i % 7 * 20)}document number {i}" for i in range(40)]
    together = asyncio.run(minilm.embed_documents(texts)).vectors
    alone = np.stack([minilm.embed_query_sync(t)[0] for t in texts[:5]])
    assert np.allclose(together[:5], alone, atol=1e-5)


def test_minilm_onnx_gives_the_torch_models_vectors(minilm: OnnxEmbedder) -> None:
    pytest.importorskip("sentence_transformers", reason="the `torch` extra is not installed")
    from indexer.providers.local import SentenceTransformerEmbedder

    texts = ["How soon must a postmortem be written?", "word " * 400, "v2.3.1 PPR-9087"]
    expected = asyncio.run(SentenceTransformerEmbedder().embed_documents(texts)).vectors
    got = asyncio.run(minilm.embed_documents(texts)).vectors
    assert np.abs(got - expected).max() < 1e-4


def test_minilm_int8_stays_close_to_float(minilm: OnnxEmbedder, tmp_path: Path) -> None:
    int8 = OnnxEmbedder(MINILM_INT8, cache_dir=tmp_path)
    texts = ["The cat sat on the mat.", "Vitamin D deficiency raises fracture risk."]
    exact = asyncio.run(minilm.embed_documents(texts)).vectors
    approx = asyncio.run(int8.embed_documents(texts)).vectors
    assert int8.model == MINILM_INT8
    assert (exact * approx).sum(axis=1).min() > 0.97


def test_minilm_onnx_file_is_written_once_then_reused(tmp_path: Path) -> None:
    OnnxEmbedder(cache_dir=tmp_path)
    (written,) = tmp_path.glob("*.onnx")
    stamp = written.stat().st_mtime_ns
    OnnxEmbedder(cache_dir=tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [written.name]
    assert written.stat().st_mtime_ns == stamp


def test_minilm_serves_a_repeated_query_from_its_cache(minilm: OnnxEmbedder) -> None:
    first = asyncio.run(minilm.embed_query("a question asked twice")).vectors
    hits = minilm.query_cache.hits
    second = asyncio.run(minilm.embed_query("a question asked twice")).vectors
    assert minilm.query_cache.hits == hits + 1
    assert np.array_equal(first, second)


def test_query_cache_forgets_the_least_recently_used() -> None:
    cache = QueryVectorCache(2)
    for text in ("a", "b"):
        cache.put(text, np.ones((1, 2), np.float32))
    assert cache.get("a") is not None  # "b" is now the oldest
    cache.put("c", np.zeros((1, 2), np.float32))
    assert cache.get("b") is None
    assert cache.get("a") is not None
    assert cache.get("c") is not None


def test_ingest_steps_wait_while_a_query_runs() -> None:
    priority = QueryPriority(max_yield_seconds=30)
    finished = threading.Event()

    def ingest_step() -> None:
        priority.yield_to_queries()
        finished.set()

    with priority.query():
        worker = threading.Thread(target=ingest_step)
        worker.start()
        assert not finished.wait(0.2)
    assert finished.wait(5)
    worker.join()


PAIRS = [
    ("Dr. Smith measured 3.14 units in v2.3.1.", "Ticket PPR-9087 tracks it."),
    ("年假需要提前两周申请。", "病假超过三天需要证明。"),
    ("unbelievably", "antidisestablishmentarianism"),
    ("# Heading > Sub", "body text, with punctuation!"),
]


def test_token_counts_are_sub_additive_as_the_embedder_contract_says(
    minilm: OnnxEmbedder,
) -> None:
    counters = [minilm.count_tokens, HashingEmbedder().count_tokens, estimate_tokens]
    for count in counters:
        for a, b in PAIRS:
            for gap in (" ", "\n", "\n\n"):
                assert count(a + gap + b) <= count(a) + count(gap) + count(b), (count, a, b)
