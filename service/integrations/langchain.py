"""A LangChain retriever over a ragsearch server (`pip install 'ragsearch[langchain]'`).

from service.integrations.langchain import RagsearchRetriever

retriever = RagsearchRetriever(base_url="http://127.0.0.1:8000", collection="handbook")
docs = retriever.invoke("how are incidents ranked?")
docs[0].metadata["citation"]  # "[1] Incidents › Severity — handbook/incidents.md"
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from service.client import RagsearchClient
from service.integrations.citations import citation_metadata

__all__ = ["RagsearchRetriever"]


class RagsearchRetriever(BaseRetriever):
    """Hybrid search in one collection; each chunk a `Document` with its citation metadata."""

    base_url: str = "http://127.0.0.1:8000"
    api_key: str | None = None
    collection: str
    top_k: int = 8
    mode: str = "hybrid"
    filter: dict[str, Any] | None = None
    timeout: float = 60.0

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        with RagsearchClient(self.base_url, self.api_key, timeout=self.timeout) as rag:
            found = rag.search(
                query, self.collection, top_k=self.top_k, mode=self.mode, filter=self.filter
            )
        return [
            Document(
                page_content=hit.text,
                id=str(hit.chunk_id),
                metadata=citation_metadata(hit, rank),
            )
            for rank, hit in enumerate(found.results, start=1)
        ]
