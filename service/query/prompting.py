"""Prompt building: pack sources into a token budget, number them, choose the model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from indexer.providers.base import ChatMessage
from indexer.records import StoredChunk
from service.query.fusion import cjk_ratio

SYSTEM_PROMPT = (
    "You answer questions for the user using only the numbered sources provided. "
    "Cite every claim with the number of its source in square brackets, like [1] or [2]. "
    "If the sources do not contain the answer, say that the knowledge base does not contain it. "
    "Answer in the language of the question. Be concise."
)


def estimate_tokens(text: str) -> int:
    """Conservative token estimate: a CJK character as one token, other text 1 per 3 chars.

    GLM has no offline tokenizer; over-estimating keeps every prompt under its window.
    """
    cjk = sum(1 for ch in text if ord(ch) >= 0x2E80)
    return cjk + (len(text) - cjk + 2) // 3


def source_header(n: int, chunk: StoredChunk) -> str:
    where = " > ".join(p for p in (chunk.title, *chunk.heading_path) if p)
    page = f", page {chunk.page}" if chunk.page else ""
    return f"[{n}] {where} ({chunk.source}{page})"


def pack(chunks: Sequence[StoredChunk], budget_tokens: int) -> list[StoredChunk]:
    """The best chunks, in order, that fit the budget (at least one, cut if it must be)."""
    packed: list[StoredChunk] = []
    used = 0
    for chunk in chunks:
        cost = estimate_tokens(chunk.text) + estimate_tokens(source_header(1, chunk)) + 4
        if used + cost > budget_tokens and packed:
            break
        packed.append(chunk)
        used += cost
    return packed


def build_messages(
    question: str, sources: Sequence[StoredChunk], history: Sequence[tuple[str, str]] = ()
) -> list[ChatMessage]:
    """System rules, earlier turns, then the numbered sources and the question."""
    blocks = [f"{source_header(i, c)}\n{c.text}" for i, c in enumerate(sources, start=1)]
    user = "Sources:\n\n" + "\n\n".join(blocks) + f"\n\nQuestion: {question}"
    messages = [ChatMessage("system", SYSTEM_PROMPT)]
    for role, content in history:
        if role in ("user", "assistant"):
            messages.append(ChatMessage(role, content))  # type: ignore[arg-type]
    messages.append(ChatMessage("user", user))
    return messages


def prompt_tokens(messages: Sequence[ChatMessage]) -> int:
    return sum(estimate_tokens(m.content) + 4 for m in messages)


@dataclass(frozen=True, slots=True)
class Route:
    model: str
    reason: str


def route(
    tokens: int,
    *,
    answer_tokens: int,
    chat_model: str,
    chat_window: int,
    long_model: str,
    long_window: int,
    whole_documents: bool,
) -> Route | None:
    """GLM-4.6 when the prompt and the answer fit its window, else GLM-4-Long; None if
    even the long model cannot take it."""
    if whole_documents:
        if tokens + answer_tokens <= long_window:
            return Route(long_model, "whole-document mode")
        return None
    if tokens + answer_tokens <= chat_window:
        return Route(chat_model, "fits the chat model's window")
    if tokens + answer_tokens <= long_window:
        return Route(long_model, f"prompt of ~{tokens:,} tokens exceeds {chat_model}'s window")
    return None


def not_found_message(question: str) -> str:
    if cjk_ratio(question) >= 0.3:
        return "知识库中没有找到这个问题的答案。"
    return "The knowledge base does not contain an answer to this question."
