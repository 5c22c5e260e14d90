"""LangChain and LlamaIndex retrievers against the real app under uvicorn (optional extras)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from indexer.settings import Settings
from service.http.app import create_app
from tests.fakes.live_server import LiveServer
from tests.service.chatbots import build_corpus
from tests.service.conftest import new_key


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("adapters") / "data")
    build_corpus(settings)
    key = new_key(settings, "reader", ["read"], collections=["docs"])
    with LiveServer(create_app(settings)) as live:
        yield live.url, key


def test_langchain_retriever_returns_chunks_as_documents_with_citations(
    server: tuple[str, str],
) -> None:
    pytest.importorskip("langchain_core")
    from langchain_core.documents import Document

    from service.integrations.langchain import RagsearchRetriever

    url, key = server
    retriever = RagsearchRetriever(base_url=url, api_key=key, collection="docs", top_k=3)

    docs = retriever.invoke("How often are logs rotated?")
    filtered = RagsearchRetriever(
        base_url=url,
        api_key=key,
        collection="docs",
        filter={"source": "https://docs.example/备份.md"},
    ).invoke("备份保留多久")

    assert all(isinstance(d, Document) for d in docs) and len(docs) == 3
    top = docs[0]
    assert "rotated every night" in top.page_content
    assert top.metadata["citation"] == "[1] Logs — https://docs.example/logs.md"
    assert top.metadata["source"] == "https://docs.example/logs.md"
    assert set(top.metadata["scores"]) >= {"dense", "lexical"}
    assert top.id == str(top.metadata["chunk_id"])
    assert [d.metadata["source"] for d in filtered] == ["https://docs.example/备份.md"]


def test_llamaindex_retriever_returns_scored_nodes_with_citations(
    server: tuple[str, str],
) -> None:
    pytest.importorskip("llama_index.core")
    from llama_index.core.schema import MetadataMode

    from service.integrations.llamaindex import RagsearchRetriever

    url, key = server
    retriever = RagsearchRetriever(url, collection="docs", api_key=key, top_k=2)

    nodes = retriever.retrieve("How long are backups kept?")

    assert len(nodes) == 2
    top = nodes[0]
    assert top.node.metadata["source"] == "https://docs.example/backups.md"
    assert top.score == pytest.approx(top.node.metadata["score"])
    assert nodes[0].score >= nodes[1].score
    llm_text = top.node.get_content(metadata_mode=MetadataMode.LLM)
    assert "citation: [1] Backups — https://docs.example/backups.md" in llm_text
    assert "chunk_id" not in llm_text
    wrong = RagsearchRetriever(url, collection="other", api_key=key)
    with pytest.raises(Exception, match="forbidden"):
        wrong.retrieve("payroll")
