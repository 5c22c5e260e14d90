"""The one settings class. Read once (CLI start-up or `create_app`) and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """ragsearch configuration: environment variables with the `RAGSEARCH_` prefix."""

    model_config = SettingsConfigDict(
        env_prefix="RAGSEARCH_", extra="ignore", populate_by_name=True
    )

    # --- storage -------------------------------------------------------------------------
    data_dir: Path = Field(
        Path("ragsearch-data"), description="Directory holding the catalog, vector files and locks."
    )
    catalog_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the catalog; default is SQLite at DATA_DIR/catalog.sqlite3. "
        "Use postgresql+psycopg://USER@HOST:5432/DB to share one catalog between replicas "
        "(needs the `scale` extra).",
    )
    vector_store: str = Field(
        "faiss",
        description="Vector store: `faiss` (files under DATA_DIR/vectors), a Milvus Lite file "
        "(a path ending in `.db`, e.g. ./ragsearch-data/milvus.db) or a Milvus server URL "
        "(http://HOST:19530). Milvus needs the `scale` extra.",
    )
    milvus_token: SecretStr | None = Field(
        None,
        description="Milvus server credentials: `USER:PASSWORD` or an API key. Unused for "
        "FAISS and Milvus Lite.",
    )
    ann_threshold: int = Field(
        50_000,
        description="Vectors in a collection above which FAISS switches from exact (flat) search "
        "to an approximate IVF index.",
    )
    ivf_nprobe: int = Field(
        32, description="IVF lists probed per query once a collection is approximate."
    )
    lexical_engine: Literal["auto", "tantivy", "database"] = Field(
        "auto",
        description="Lexical search: `tantivy` (an index per collection under DATA_DIR/lexical, "
        "top-k pruning, fast at a million chunks), `database` (SQLite FTS5 or PostgreSQL full "
        "text), or `auto`: tantivy with a SQLite catalog, the database with PostgreSQL.",
    )
    max_file_bytes: int = Field(
        50 * 1024 * 1024, description="Largest file (bytes) ingest accepts; larger ones fail alone."
    )
    url_fetch_timeout: float = Field(
        30.0, gt=0, description="Seconds a URL ingest may take to download (redirects included)."
    )
    url_fetch_allowed_networks: list[str] = Field(
        default_factory=list,
        description="Networks (CIDR, e.g. 10.0.0.0/8) URL ingests may reach although private, "
        "loopback or link-local; by default only public addresses are fetched.",
    )
    max_pages_per_document: int = Field(
        5_000, description="Most pages a PDF may have; a longer one fails alone, before parsing."
    )
    max_chunks_per_document: int = Field(
        20_000, description="Most chunks one document may make; a larger one fails alone."
    )

    # --- chunking ------------------------------------------------------------------------
    chunk_tokens: int = Field(
        512,
        description="Target chunk size in tokens; capped by the embedder's real input limit.",
    )
    chunk_overlap_sentences: int = Field(
        1, description="Sentences repeated at the start of the next chunk."
    )

    # --- local (embedded default) models -------------------------------------------------
    local_embedding_model: str = Field(
        "all-MiniLM-L6-v2-int8",
        description="Local embedding model for new collections: `all-MiniLM-L6-v2-int8` (the "
        "bundled MiniLM with int8 matrix products on ONNX Runtime; SciFact nDCG@10 within 0.005 "
        "of float, see BENCHMARKS.md), `all-MiniLM-L6-v2` (float, the same vectors as torch), "
        "`multilingual-e5-small-int8` / `multilingual-e5-small` (English and Chinese among ~100 "
        "languages, so hybrid search keeps its dense side for Chinese queries; needs the "
        "`multilingual` extra) or the directory of a sentence-transformers model (needs the "
        "`torch` extra).",
    )
    local_embedding_runtime: Literal["onnx", "torch"] = Field(
        "onnx",
        description="Runtime of the bundled MiniLM: `onnx` (ONNX Runtime, no torch) or `torch` "
        "(sentence-transformers; needs the `torch` extra). Both give the same vectors.",
    )
    model_cache_dir: Path | None = Field(
        None,
        description="Where the ONNX file written from the bundled MiniLM is kept (once, on "
        "first use); default `$XDG_CACHE_HOME/ragsearch/models` or `~/.cache/ragsearch/models`.",
    )
    query_cache_size: int = Field(
        1024, description="Query vectors each local embedder keeps (LRU) for repeated queries."
    )
    local_models_dir: Path | None = Field(
        None,
        description="Directory whose sub-directories `POST /v1/collections` may name as a local "
        "embedding model path; unset, HTTP callers may only use the configured local model.",
    )
    local_cross_encoder_path: Path | None = Field(
        None, description="Directory of a local sentence-transformers cross-encoder for reranking."
    )
    embed_batch_size: int = Field(64, description="Texts per embedding call (Zhipu allows 64).")
    zhipu_embed_batch_tokens: int = Field(
        8000,
        description="Most estimated tokens in one Zhipu embedding request, all inputs together "
        "(the docs bound a request's array at 8K tokens; our estimate runs high).",
    )

    # --- Zhipu BigModel ------------------------------------------------------------------
    zhipu_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices(
            "RAGSEARCH_ZHIPU_API_KEY", "ZHIPUAI_API_KEY", "zhipu_api_key"
        ),
        description="Zhipu API key (`ZHIPUAI_API_KEY` also accepted). When set, Zhipu is the "
        "default provider for new collections.",
    )
    zhipu_base_url: str = Field(
        "https://open.bigmodel.cn/api/paas/v4", description="Zhipu API base URL."
    )
    zhipu_embedding_model: str = Field("embedding-3", description="Zhipu embedding model.")
    zhipu_embedding_dimensions: int = Field(
        1024, description="Embedding-3 dimension for new collections: 256, 512, 1024 or 2048."
    )
    zhipu_rerank_model: str = Field("rerank", description="Zhipu rerank model.")
    zhipu_chat_model: str = Field("glm-4.6", description="Zhipu chat model for answers.")
    zhipu_long_chat_model: str = Field(
        "glm-4-long", description="Zhipu chat model for contexts too long for the chat model."
    )
    zhipu_timeout_seconds: float = Field(
        60.0,
        description="Read timeout per Zhipu request; a chat request adds 1 s per 4,000 prompt "
        "tokens, up to RAGSEARCH_ZHIPU_LONG_TIMEOUT_SECONDS.",
    )
    zhipu_long_timeout_seconds: float = Field(
        300.0,
        description="Longest read timeout of a chat request with a very long prompt (the "
        "official SDK's 300 s). A read timeout of a prompt over 32K tokens is not re-sent.",
    )
    zhipu_connect_timeout_seconds: float = Field(8.0, description="Connect timeout to Zhipu.")
    zhipu_max_concurrency: int = Field(8, description="Zhipu requests in flight at once.")
    zhipu_max_retries: int = Field(3, description="Retries of a retryable Zhipu failure.")
    zhipu_backoff_seconds: float = Field(
        1.0, description="First retry wait; doubles each retry, with jitter."
    )
    price_embedding_cny_per_mtok: float = Field(
        0.5, description="Embedding-3 price, CNY per 1M tokens."
    )
    price_rerank_cny_per_mtok: float = Field(0.8, description="Rerank price, CNY per 1M tokens.")
    zhipu_chat_prices: dict[str, tuple[float, float]] = Field(
        default_factory=dict,
        description="Chat prices, CNY per 1M tokens as [input, output] per model, overriding "
        'the built-in table (e.g. `{"glm-4.6": [2, 8], "glm-4-long": [1, 1]}`).',
    )

    # --- OpenAI-compatible chat model (Ollama, vLLM, llama.cpp, OpenAI) -------------------
    chat_base_url: str | None = Field(
        None,
        description="Base URL of an OpenAI-compatible chat server (e.g. "
        "http://localhost:11434/v1 for Ollama); answers use it when no Zhipu key is set.",
    )
    chat_api_key: SecretStr | None = Field(
        None, description="Bearer key for the OpenAI-compatible chat server (local ones need none)."
    )
    chat_model: str | None = Field(
        None, description="Model name on the OpenAI-compatible chat server (e.g. `qwen2.5:7b`)."
    )
    chat_model_context_window: int = Field(
        32_768,
        description="Context window (tokens) of the OpenAI-compatible chat model; sources are "
        "packed to fit it with room for the answer.",
    )
    chat_timeout_seconds: float = Field(
        120.0, description="Read timeout per request to the OpenAI-compatible chat server."
    )

    # --- search and answer ---------------------------------------------------------------
    candidate_k: int = Field(100, description="Candidates each retriever contributes to fusion.")
    rrf_k: int = Field(60, description="Reciprocal rank fusion constant.")
    fusion: Literal["rrf", "zscore"] = Field(
        "rrf",
        description="How hybrid search fuses dense and lexical results: `rrf` (reciprocal "
        "rank fusion) or `zscore` (sum of normalised scores; better on SciFact, see "
        "BENCHMARKS.md).",
    )
    dense_weight: float = Field(
        1.0, ge=0, description="Weight of dense (vector) results in hybrid fusion; 0 ignores them."
    )
    lexical_weight: float = Field(
        1.0,
        ge=0,
        description="Weight of lexical (full-text) results in hybrid fusion; 0 ignores them.",
    )
    chat_context_window: int | None = Field(
        None,
        description="Context window of the chat model (tokens); default: the model's own "
        "from the built-in table (glm-4.6: 200K).",
    )
    long_context_window: int | None = Field(
        None,
        description="Context window of the long chat model (tokens); default: the model's own "
        "from the built-in table (glm-4-long: 1M).",
    )
    answer_max_tokens: int = Field(2048, description="Token budget reserved for an answer.")
    answer_context_tokens: int = Field(
        12_000, description="Token budget for retrieved chunks packed into an answer prompt."
    )
    gate_min_similarity: float | None = Field(
        None,
        description="Decline gate: best query-to-source cosine that, with some term coverage, "
        "lets an answer through; default: calibrated per embedder (local MiniLM 0.45; "
        "none for Zhipu and hashing, whose cosines are not calibrated).",
    )
    gate_min_coverage: float | None = Field(
        None,
        description="Decline gate: IDF-weighted share of the question's content terms one "
        "source must contain to answer on lexical evidence alone; default: calibrated per "
        "embedder (0.6; beside a similarity signal 0.5 suffices). Higher declines more.",
    )
    gate_min_rerank_score: float = Field(
        0.1,
        description="Decline gate: with a reranker, an answer is declined when the best "
        "source scores below this.",
    )

    # --- HTTP service --------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Address `ragsearch serve` binds to.")
    port: int = Field(8000, ge=0, le=65535, description="Port `ragsearch serve` binds to.")
    allow_open_remote: bool = Field(
        False, description="Allow binding beyond localhost while no API key exists."
    )
    max_upload_bytes: int = Field(
        50 * 1024 * 1024, description="Largest upload (bytes) the HTTP service accepts."
    )
    max_query_chars: int = Field(4096, description="Longest query (characters) accepted.")
    max_filter_terms: int = Field(
        1024, description="Most conditions in one metadata filter (`$in` values count one each)."
    )
    max_filter_depth: int = Field(8, description="Deepest nesting of `$and`/`$or` in a filter.")
    open_after_keys: bool = Field(
        False,
        description="Serve without keys again after every key was revoked. Off: once any key "
        "has existed the service stays closed, so revoking keys never opens it.",
    )
    public_origins: list[str] = Field(
        default_factory=list,
        description="Origins (https://search.example) the service is reached at besides "
        "localhost; in open mode requests with another Host or Origin are refused.",
    )
    key_models: list[str] = Field(
        default_factory=list,
        description="Answer models that keys without the admin scope may choose; other keys "
        "get the server's own choice (`auto`, or `extractive`).",
    )
    key_daily_tokens: int | None = Field(
        None,
        description="Model tokens (prompt + completion) each API key may spend per UTC day on "
        "answers and chat; unset means no budget. Counted in the catalog: shared by every "
        "process and replica, kept across restarts.",
    )

    @property
    def resolved_catalog_url(self) -> str:
        """The catalog URL, defaulting to SQLite inside the data directory."""
        if self.catalog_url:
            return self.catalog_url
        return f"sqlite:///{(self.data_dir / 'catalog.sqlite3').resolve()}"

    @property
    def vectors_dir(self) -> Path:
        """Where FAISS files live."""
        return self.data_dir / "vectors"

    @property
    def lexical_dir(self) -> Path:
        """Where tantivy indexes live."""
        return self.data_dir / "lexical"

    @property
    def uses_tantivy(self) -> bool:
        """Whether lexical search goes to tantivy (see `lexical_engine`)."""
        if self.lexical_engine == "auto":
            # Not `resolved_catalog_url`: its path resolution is a syscall per search.
            return not self.catalog_url or self.catalog_url.startswith("sqlite")
        return self.lexical_engine == "tantivy"

    @property
    def has_zhipu_key(self) -> bool:
        """Whether a non-empty Zhipu key is configured."""
        return self.zhipu_api_key is not None and bool(self.zhipu_api_key.get_secret_value())
