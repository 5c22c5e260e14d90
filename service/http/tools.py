"""Function calling: OpenAI / GLM tool definitions for `/v1/search` and `/v1/answer`, served at
`/v1/tools` so a chat client can let its model call ragsearch."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from service.http.deps import PrincipalDep, authorize
from service.http.openai_api import OpenAIErrorBody, OpenAIRoute
from service.http.schemas import CALLER_ERRORS, FILTER_DOC, error_responses
from service.query.records import ANSWER_TOP_K, MAX_TOP_K, SEARCH_TOP_K

__all__ = ["router", "tool_definitions"]

router = APIRouter(
    route_class=OpenAIRoute,
    tags=["openai-compatible"],
    responses=error_responses(*CALLER_ERRORS, model=OpenAIErrorBody),
)


def tool_definitions() -> list[dict[str, Any]]:
    """OpenAI / GLM function definitions for `/v1/search` and `/v1/answer`."""
    common: dict[str, Any] = {
        "query": {
            "type": "string",
            "description": "The search query or question (English, Chinese, identifiers).",
        },
        "collection": {
            "type": "string",
            "description": "The collection to use (GET /v1/collections lists them).",
        },
        "filter": {"type": "object", "description": FILTER_DOC},
    }
    search_params = {
        **common,
        "top_k": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_TOP_K,
            "default": SEARCH_TOP_K,
            "description": "Passages to return.",
        },
        "mode": {
            "type": "string",
            "enum": ["hybrid", "dense", "lexical"],
            "default": "hybrid",
            "description": "Retrieval: hybrid (dense + lexical), dense or lexical.",
        },
    }
    answer_params = {
        **common,
        "top_k": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_TOP_K,
            "default": ANSWER_TOP_K,
            "description": "Sources to consider for the answer.",
        },
    }
    return [
        _function(
            "search",
            "Search the knowledge base: ranked passages with their source, title and text.",
            search_params,
        ),
        _function(
            "answer",
            "Answer a question from the knowledge base, citing sources as [n].",
            answer_params,
        ),
    ]


def _function(name: str, description: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": properties,
                "required": ["query", "collection"],
            },
        },
    }


@router.get("/v1/tools", summary="Function-calling definitions for search and answer")
async def list_tools(principal: PrincipalDep) -> dict[str, Any]:
    """`tools` to pass to an OpenAI/GLM chat request; `endpoints` says where each call goes
    (POST the function's arguments as the JSON body)."""
    authorize(principal, "read")
    return {
        "tools": tool_definitions(),
        "endpoints": {
            "search": {"method": "POST", "path": "/v1/search"},
            "answer": {"method": "POST", "path": "/v1/answer"},
        },
    }
