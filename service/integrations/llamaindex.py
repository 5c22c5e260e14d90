"""A LlamaIndex retriever over a ragsearch server (`pip install 'ragsearch[llamaindex]'`).

from service.integrations.llamaindex import RagsearchRetriever

retriever = RagsearchRetriever("http://127.0.0.1:8000", collection="handbook")
nodes = retriever.retrieve("how are incidents ranked?")
nodes[0].score, nodes[0].node.metadata["citation"]
"""

from __future__ import annotations

from typing import Any

from llama_index.core.retrievers import BaseRetriever
from llama_index.core.schema import NodeWithScore, QueryBundle, TextNode

from service.client import RagsearchClient, SearchHit
from service.integrations.citations import citation_metadata

__all__ = ["RagsearchRetriever"]


class RagsearchRetriever(BaseRetriever):
    """Hybrid search in one collection; each chunk a scored `TextNode` with citation metadata."""

    def __init__(
        self,
        base_url: str = "http://127.0.0.1:8000",
        *,
        collection: str,
        api_key: str | None = None,
        top_k: int = 8,
        mode: str = "hybrid",
        filter: dict[str, Any] | None = None,
        timeout: float = 60.0,
    ) -> None:
        super().__init__()
        self.base_url = base_url
        self.api_key = api_key
        self.collection = collection
        self.top_k = top_k
        self.mode = mode
        self.filter = filter
        self.timeout = timeout

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        with RagsearchClient(self.base_url, self.api_key, timeout=self.timeout) as rag:
            found = rag.search(
                query_bundle.query_str,
                self.collection,
                top_k=self.top_k,
                mode=self.mode,
                filter=self.filter,
            )
        return [_node(hit, rank) for rank, hit in enumerate(found.results, start=1)]


def _node(hit: SearchHit, rank: int) -> NodeWithScore:
    metadata = citation_metadata(hit, rank)
    # The citation line reaches the LLM with the text; the rest is for the application.
    hidden = [k for k in metadata if k != "citation"]
    node = TextNode(
        id_=str(hit.chunk_id),
        text=hit.text,
        metadata=metadata,
        excluded_llm_metadata_keys=hidden,
        excluded_embed_metadata_keys=list(metadata),
    )
    return NodeWithScore(node=node, score=hit.score)
