"""Which embedder a collection uses, and building it from settings."""

from __future__ import annotations

import threading
from dataclasses import dataclass

from indexer.errors import InputError, ProviderAuthError
from indexer.providers.base import Embedder
from indexer.providers.onnx_local import MINILM, MINILM_INT8, MULTILINGUAL_MODELS, ONNX_MODELS
from indexer.records import Collection
from indexer.settings import Settings

PROVIDERS = ("local", "zhipu", "hashing")


@dataclass(frozen=True, slots=True)
class EmbedderSpec:
    provider: str
    model: str
    dimensions: int | None  # local: None for the model's own, else the one asked for (checked)


def default_embedder_spec(settings: Settings) -> EmbedderSpec:
    """Zhipu Embedding-3 when a key is configured, else the embedded MiniLM."""
    if settings.has_zhipu_key:
        return EmbedderSpec(
            "zhipu", settings.zhipu_embedding_model, settings.zhipu_embedding_dimensions
        )
    return EmbedderSpec("local", settings.local_embedding_model, None)


def requested_embedder_spec(
    settings: Settings,
    provider: str | None,
    model: str | None,
    dimensions: int | None,
    *,
    remote: bool = False,
) -> EmbedderSpec:
    """The embedder a new collection asks for, with the settings' defaults filled in.

    A `remote` caller (HTTP) may not name local paths outside `local_models_dir`, nor ask
    for Zhipu on a server without a key: both are refused with InputError before any load.
    """
    provider = provider or default_embedder_spec(settings).provider
    if provider == "local":
        chosen = model or settings.local_embedding_model
        if remote:
            _check_remote_model_path(settings, chosen)
        return EmbedderSpec("local", chosen, dimensions)
    if provider == "zhipu" and remote and not settings.has_zhipu_key:
        raise InputError(
            "this server has no Zhipu API key; create the collection with embedder "
            "`local` or `hashing`"
        )
    if provider == "zhipu":
        return EmbedderSpec(
            "zhipu",
            model or settings.zhipu_embedding_model,
            dimensions or settings.zhipu_embedding_dimensions,
        )
    if provider == "hashing":
        return EmbedderSpec("hashing", "hashing", dimensions or 256)
    raise InputError(f"unknown embedder provider {provider!r}; use one of {PROVIDERS}")


def _check_remote_model_path(settings: Settings, model: str) -> None:
    if model == settings.local_embedding_model or model in ONNX_MODELS:
        return
    root = settings.local_models_dir
    if root is None:
        raise InputError(
            f"local model {model!r} is not available: this server offers "
            f"{settings.local_embedding_model!r} (set RAGSEARCH_LOCAL_MODELS_DIR to offer more)"
        )
    base = root.resolve()
    path = (base / model).resolve()
    if path == base or not path.is_relative_to(base):
        raise InputError(f"local model {model!r} must name a directory inside {root}")
    if not path.is_dir():
        raise InputError(f"local model {model!r} does not exist in {root}")


def build_embedder(settings: Settings, spec: EmbedderSpec) -> Embedder:
    if spec.provider == "local":
        return _build_local(settings, spec.model)
    if spec.provider == "hashing":
        from indexer.providers.local import HashingEmbedder

        return HashingEmbedder(spec.dimensions or 256)
    if spec.provider == "zhipu":
        if not settings.has_zhipu_key:
            raise ProviderAuthError(
                "this collection embeds with Zhipu; set ZHIPUAI_API_KEY to use it"
            )
        from indexer.providers.zhipu import ZhipuEmbedder

        return ZhipuEmbedder.from_settings(settings, model=spec.model, dimensions=spec.dimensions)
    raise InputError(f"unknown embedder provider {spec.provider!r}; use one of {PROVIDERS}")


def _build_local(settings: Settings, model: str) -> Embedder:
    """MiniLM on ONNX Runtime by default; torch for other models or when asked for.

    multilingual-e5-small runs on ONNX Runtime only (its weights are not a torch model)."""
    onnx_minilm = model == MINILM and settings.local_embedding_runtime == "onnx"
    if model == MINILM_INT8 or model in MULTILINGUAL_MODELS or onnx_minilm:
        from indexer.providers.onnx_local import OnnxEmbedder

        return OnnxEmbedder(
            model, cache_dir=settings.model_cache_dir, query_cache_size=settings.query_cache_size
        )
    from indexer.providers.local import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(
        model, batch_size=settings.embed_batch_size, query_cache_size=settings.query_cache_size
    )


class EmbedderCache:
    """Builds each embedder once per process: loading MiniLM costs seconds."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._built: dict[EmbedderSpec, Embedder] = {}
        self._lock = threading.Lock()

    def get(self, spec: EmbedderSpec) -> Embedder:
        if spec.provider == "local":  # a local model has one dimension: load it once
            spec = EmbedderSpec("local", spec.model, None)
        with self._lock:
            if spec not in self._built:
                self._built[spec] = build_embedder(self.settings, spec)
            return self._built[spec]

    def for_collection(self, collection: Collection) -> Embedder:
        return self.get(
            EmbedderSpec(
                collection.embedder_provider, collection.embedder_model, collection.dimensions
            )
            if collection.embedder_provider != "local"
            else EmbedderSpec("local", collection.embedder_model, None)
        )

    async def aclose(self) -> None:
        for embedder in self._built.values():
            await embedder.aclose()
        self._built.clear()
