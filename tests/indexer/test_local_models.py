"""The embedded default model (MiniLM), loaded for real from the bundled package."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from indexer.providers.local import SentenceTransformerEmbedder

pytestmark = pytest.mark.slow  # loads the real MiniLM model


def test_minilm_counts_tokens_beyond_its_truncation_limit() -> None:
    model = SentenceTransformerEmbedder()
    long_text = "word " * 1000
    assert model.max_input_tokens == 254
    assert model.count_tokens(long_text) == 1000
    embedded = asyncio.run(model.embed_documents([long_text, "short text"]))
    # Encoding truncates to the model's limit; counting (for chunk budgets) must not.
    assert model.count_tokens(long_text) == 1000
    assert embedded.vectors.shape == (2, 384)
    assert np.allclose(np.linalg.norm(embedded.vectors, axis=1), 1.0, atol=1e-5)


def test_minilm_places_similar_texts_closer() -> None:
    model = SentenceTransformerEmbedder()
    vectors = asyncio.run(
        model.embed_documents(
            ["The cat sat on the mat.", "A kitten is sitting on a rug.", "Quarterly tax filing."]
        )
    ).vectors
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2


PAIRS = [
    ("Dr. Smith measured 3.14 units in v2.3.1.", "Ticket PPR-9087 tracks it."),
    ("年假需要提前两周申请。", "病假超过三天需要证明。"),
    ("unbelievably", "antidisestablishmentarianism"),
    ("# Heading > Sub", "body text, with punctuation!"),
]


def test_token_counts_are_sub_additive_as_the_embedder_contract_says() -> None:
    from indexer.providers.local import HashingEmbedder
    from indexer.providers.zhipu import estimate_tokens

    counters = [SentenceTransformerEmbedder().count_tokens, HashingEmbedder().count_tokens]
    counters.append(estimate_tokens)
    for count in counters:
        for a, b in PAIRS:
            for gap in (" ", "\n", "\n\n"):
                assert count(a + gap + b) <= count(a) + count(gap) + count(b), (count, a, b)
