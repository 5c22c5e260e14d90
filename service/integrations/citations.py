"""What both retriever adapters attach to a chunk: where it comes from, and how to cite it."""

from __future__ import annotations

from typing import Any

from service.client import SearchHit

__all__ = ["citation_metadata"]


def citation_metadata(hit: SearchHit, rank: int) -> dict[str, Any]:
    """Flat metadata for a framework document: source, title, place, scores, a citation line."""
    where = " › ".join(hit.heading_path) or (hit.title or "")
    page = f", page {hit.page}" if hit.page is not None else ""
    return {
        "citation": f"[{rank}] {where} — {hit.source}{page}",
        "rank": rank,
        "chunk_id": hit.chunk_id,
        "document_id": hit.document_id,
        "source": hit.source,
        "title": hit.title,
        "heading_path": list(hit.heading_path),
        "page": hit.page,
        "span": list(hit.span) if hit.span else None,
        "score": hit.score,
        "scores": dict(hit.scores),
        **{f"meta_{k}": v for k, v in hit.metadata.items()},
    }
