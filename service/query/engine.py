"""The query engine: the index, models and settings one app (or CLI command) shares."""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator

import faiss

from indexer.errors import RagsearchError
from indexer.index import Index
from indexer.providers.base import ChatModel, Reranker
from indexer.providers.factory import EmbedderCache
from indexer.providers.zhipu_models import chat_limits
from indexer.settings import Settings
from service.query.answer import AnswerContext, answer, answer_events
from service.query.answer_records import Answer, AnswerEvent
from service.query.gate import GateOverrides
from service.query.records import AnswerRequest, SearchRequest, SearchResult
from service.query.search import SearchContext, search


def build_reranker(settings: Settings) -> Reranker | None:
    """Zhipu Rerank with a key, else a configured local cross-encoder, else none."""
    if settings.has_zhipu_key:
        from indexer.providers.zhipu import ZhipuReranker

        return ZhipuReranker.from_settings(settings)
    if settings.local_cross_encoder_path is not None:
        from indexer.providers.local import LocalCrossEncoder

        return LocalCrossEncoder(settings.local_cross_encoder_path)
    return None


def uses_openai_chat(settings: Settings) -> bool:
    """An OpenAI-compatible server answers: its URL is set and no Zhipu key (Zhipu wins)."""
    return bool(settings.chat_base_url) and not settings.has_zhipu_key


def build_chat(settings: Settings) -> ChatModel | None:
    """GLM over Zhipu with a key, else an OpenAI-compatible server when configured; None
    means the extractive answerer."""
    if settings.has_zhipu_key:
        from indexer.providers.zhipu import ZhipuChatModel

        return ZhipuChatModel.from_settings(settings)
    if uses_openai_chat(settings):
        from indexer.providers.openai_chat import OpenAIChatModel

        return OpenAIChatModel.from_settings(settings)
    return None


def answer_context(
    settings: Settings, search: SearchContext, chat: ChatModel | None
) -> AnswerContext:
    """Models, windows and budgets for answers: GLM-4.6 and GLM-4-Long, or the one
    OpenAI-compatible model with its own (usually far smaller) window."""
    gate = GateOverrides(
        dense=settings.gate_min_similarity,
        coverage=settings.gate_min_coverage,
        rerank=settings.gate_min_rerank_score,
    )
    if uses_openai_chat(settings) and settings.chat_model:
        window = settings.chat_model_context_window
        # Room for the system prompt, the question and earlier turns beside the sources.
        room = max(256, window - settings.answer_max_tokens - 1024)
        return AnswerContext(
            search=search,
            chat=chat,
            chat_model=settings.chat_model,
            long_model=settings.chat_model,
            chat_window=window,
            long_window=window,
            answer_tokens=settings.answer_max_tokens,
            context_tokens=min(settings.answer_context_tokens, room),
            gate=gate,
        )
    return AnswerContext(
        search=search,
        chat=chat,
        chat_model=settings.zhipu_chat_model,
        long_model=settings.zhipu_long_chat_model,
        chat_window=settings.chat_context_window
        or chat_limits(settings.zhipu_chat_model).context_window,
        long_window=settings.long_context_window
        or chat_limits(settings.zhipu_long_chat_model).context_window,
        answer_tokens=settings.answer_max_tokens,
        context_tokens=settings.answer_context_tokens,
        gate=gate,
    )


class Engine:
    """Owns the open index and model clients; closed by `aclose`."""

    def __init__(
        self,
        settings: Settings,
        *,
        reranker: Reranker | None = None,
        chat: ChatModel | None = None,
        build_models: bool = True,
    ) -> None:
        self.settings = settings
        # One query at a time gains nothing from FAISS's OpenMP threads; on 2 busy cores they
        # spin-wait on each other (24 ms vs 1 ms for a top-100 flat search, BENCHMARKS.md).
        faiss.omp_set_num_threads(1)
        self.index = Index(settings)
        self.embedders = EmbedderCache(settings)
        self.models_loaded = threading.Event()
        self.model_errors: dict[str, str] = {}  # collection name -> why its model did not load
        self.reranker = (
            reranker if reranker is not None or not build_models else build_reranker(settings)
        )
        self.chat = chat if chat is not None or not build_models else build_chat(settings)
        self.search_context = SearchContext(
            index=self.index,
            embedder_for=self.embedders.for_collection,
            reranker=self.reranker,
            candidate_k=settings.candidate_k,
            rrf_k=settings.rrf_k,
            max_query_chars=settings.max_query_chars,
            fusion=settings.fusion,
            weights={"dense": settings.dense_weight, "lexical": settings.lexical_weight},
            max_filter_terms=settings.max_filter_terms,
            max_filter_depth=settings.max_filter_depth,
        )
        self.answer_context = answer_context(settings, self.search_context, self.chat)
        self.chat_model_name = self.answer_context.chat_model

    def load_models(self) -> None:
        """Load every collection's local embedder now, so no query pays for loading it.

        Remote clients (Zhipu) cost nothing to build and are left to first use. Failures are
        kept in `model_errors` (the readiness check reports them); `models_loaded` is set last.
        """
        try:
            for collection in self.index.catalog.list_collections():
                if collection.embedder_provider != "local":
                    continue
                try:
                    self.embedders.for_collection(collection)
                except RagsearchError as exc:
                    self.model_errors[collection.name] = exc.message
        finally:
            self.models_loaded.set()

    async def search(self, request: SearchRequest) -> SearchResult:
        return await search(self.search_context, request)

    async def answer(self, request: AnswerRequest) -> Answer:
        return await answer(self.answer_context, request)

    def answer_events(self, request: AnswerRequest) -> AsyncGenerator[AnswerEvent, None]:
        return answer_events(self.answer_context, request)

    async def aclose(self) -> None:
        await self.embedders.aclose()
        for client in (self.reranker, self.chat):
            if client is not None:
                await client.aclose()
        self.index.close()
